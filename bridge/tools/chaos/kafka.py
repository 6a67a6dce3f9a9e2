"""The scenario's own Kafka client, independent of the bridge's (confluent-kafka / librdkafka, where the
bridge uses aiokafka): topics, a producer of inputs, an assign-based reader of inputs and outputs, and the
bridge group's committed offsets. Calls block; the runner runs them in a thread."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka import TopicPartition as KTopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

Headers = list[tuple[str, bytes]]

_QUIET = logging.getLogger("bridge.tools.chaos.librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


@dataclass(frozen=True, slots=True)
class Rec:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers


def _base(bootstrap: str) -> dict[str, Any]:
    # librdkafka logs every dropped connection; a chaos run drops many on purpose.
    return {"bootstrap.servers": bootstrap, "logger": _QUIET}


def create_topics(bootstrap: str, names: Sequence[str], partitions: int, timeout_s: float = 30.0) -> None:
    admin = AdminClient(_base(bootstrap))
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names],
        request_timeout=timeout_s,
    )
    for f in futures.values():
        f.result(timeout_s)


class InputProducer:
    """Produces input records with acks=all; counts the deliveries and the failures."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.delivered = 0
        self.failed = 0
        self._producer = Producer(
            {
                **_base(bootstrap),
                "acks": "all",
                "linger.ms": 5,
                "message.max.bytes": 16 * 1024 * 1024,
                "message.timeout.ms": 300_000,
            }
        )

    def _report(self, err: Any, _msg: Any) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1

    def send(self, records: Iterable[tuple[bytes | None, bytes | None, Headers]]) -> int:
        n = 0
        for key, value, headers in records:
            while True:
                try:
                    self._producer.produce(
                        self.topic, value, key=key, headers=list(headers), on_delivery=self._report
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)
            self._producer.poll(0)
            n += 1
        return n

    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding deliveries; returns how many are still outstanding."""
        remaining: int = self._producer.flush(timeout_s)
        return remaining


class Reader:
    """Reads topics from the beginning by assignment (no consumer group) and keeps every record (without
    its value for the topics in ``drop_values``: a large input backlog is only counted)."""

    def __init__(
        self, bootstrap: str, topics: Sequence[str], partitions: int, drop_values: Sequence[str] = ()
    ) -> None:
        self.records: list[Rec] = []
        self._drop_values = frozenset(drop_values)
        self._consumer = Consumer(
            {
                **_base(bootstrap),
                "group.id": f"chaos-reader-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "fetch.max.bytes": 64 * 1024 * 1024,
                "receive.message.max.bytes": 80 * 1024 * 1024,
            }
        )
        self._consumer.assign([KTopicPartition(t, p, 0) for t in topics for p in range(partitions)])

    def poll(self, seconds: float) -> int:
        """Read for up to ``seconds``; returns how many records arrived."""
        deadline = time.monotonic() + seconds
        n = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return n
            for m in self._consumer.consume(1000, min(left, 0.2)):
                if m.error() is not None:
                    continue
                raw = m.headers() or []
                pairs = raw.items() if isinstance(raw, dict) else raw
                headers = [(k, v if isinstance(v, bytes) else b"") for k, v in pairs]
                key, value = m.key(), m.value()
                if m.topic() in self._drop_values:
                    value = None
                self.records.append(
                    Rec(
                        str(m.topic()),
                        int(m.partition() or 0),
                        int(m.offset() or 0),
                        key if isinstance(key, bytes) else None,
                        value if isinstance(value, bytes) else None,
                        headers,
                    )
                )
                n += 1

    def close(self) -> None:
        self._consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[tuple[str, int], int | None]:
    """The group's committed offsets (None where the group committed nothing)."""
    c = Consumer({**_base(bootstrap), "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([KTopicPartition(topic, p) for p in range(partitions)], timeout=10)
    except KafkaException:
        return {(topic, p): None for p in range(partitions)}
    finally:
        c.close()
    return {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None) for tp in got}
