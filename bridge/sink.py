"""The Kafka sink: where an output leaves the bridge and is acknowledged (acks=all).

Idempotence ``auto`` asks for it and falls back, with a warning log and a metric, only when the broker
answers the producer-id request with a refusal (as the embedded broker does); a broker that cannot be
reached is not a refusal: :meth:`Sink.start` raises :class:`~bridge.errors.KafkaUnavailable` naming the
addresses and the cause, and the app waits for the brokers. ``on`` makes a refusal fatal; ``off`` never
asks.

Every producer error is mapped here, once, to a :class:`~bridge.errors.PublishError`: refused for good
when the record itself is the problem (over a size limit, invalid), retriable otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    BrokerResponseError,
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from bridge import log as log_mod
from bridge.config import KafkaConfig
from bridge.core.outputs import OutputRecord
from bridge.errors import PublishError, PublishRefused, PublishRetriable
from bridge.metrics import Metrics
from bridge.source import BOOTSTRAP_LINES, client_options, unavailable

log = structlog.get_logger("bridge.sink")

TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
INVALID = (InvalidMessageError, CorruptRecordException, InvalidTimestampError)


def largest(records: Sequence[OutputRecord]) -> int:
    """The size a publish failure names: the largest value among the records of one output."""
    return max(len(r.value) for r in records)


def publish_error(exc: BaseException, size: int | None = None) -> PublishError:
    """The bridge's view of a producer failure."""
    name = type(exc).__name__
    if isinstance(exc, TOO_LARGE):
        return PublishRefused(name, size, too_large=True)
    if isinstance(exc, INVALID):
        return PublishRefused(name, size)
    return PublishRetriable(name, size)


class _InitProducerIdRefusal(logging.Filter):
    """aiokafka logs a refused producer-id request at error level before raising it; the sink handles
    that refusal (a warning of its own), so the library's line is dropped while the sink starts."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unexpected error during InitProducerIdRequest")


@contextlib.contextmanager
def _quiet_refusal() -> Iterator[None]:
    logger = logging.getLogger("aiokafka.producer.sender")
    flt = _InitProducerIdRefusal()
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


class Sink:
    def __init__(self, cfg: KafkaConfig, metrics: Metrics) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.producer: AIOKafkaProducer | None = None
        self.idempotent = False

    def _producer(self, idempotent: bool) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **client_options(self.cfg),
            acks="all",
            enable_idempotence=idempotent,
            linger_ms=self.cfg.linger_ms,
            max_batch_size=1024 * 1024,
            max_request_size=self.cfg.max_request_bytes,
            request_timeout_ms=30_000,
        )

    async def start(self) -> None:
        """Start the producer; :class:`~bridge.errors.KafkaUnavailable` when the brokers cannot be reached
        (the producer is closed again)."""
        try:
            await self._start()
        except KafkaConnectionError as exc:
            raise await unavailable(self.cfg, exc) from exc

    async def _start(self) -> None:
        mode = self.cfg.idempotence
        if mode != "off":
            producer = self._producer(True)
            try:
                with _quiet_refusal(), log_mod.muted("aiokafka", *BOOTSTRAP_LINES):
                    await producer.start()
            except BrokerResponseError as exc:
                await producer.stop()
                if mode == "on":
                    raise
                log.warning(
                    "producer_idempotence_refused",
                    error=type(exc).__name__,
                    fallback="acks=all",
                    message="the broker refused an idempotent producer id; publishing with acks=all "
                    "without idempotence (set BRIDGE_KAFKA_IDEMPOTENCE=off to skip asking)",
                )
                self.metrics.idempotence_disabled.set(1)
            except BaseException:
                await producer.stop()
                raise
            else:
                self.producer, self.idempotent = producer, True
                return
        producer = self._producer(False)
        try:
            with log_mod.muted("aiokafka", *BOOTSTRAP_LINES):
                await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self.producer = producer

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def send(self, records: Sequence[OutputRecord]) -> list[asyncio.Future[Any]]:
        """Hand records to the producer in order; the futures resolve when the broker acknowledged them.
        Raises :class:`PublishError` when the producer refuses at once."""
        producer = self.producer
        assert producer is not None
        futures = []
        for r in records:
            try:
                futures.append(await producer.send(r.topic, r.value, key=r.key, headers=r.headers))
            except KafkaError as exc:
                raise publish_error(exc, largest(records)) from exc
        return futures
