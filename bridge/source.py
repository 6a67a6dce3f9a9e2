"""The Kafka source: where a record enters the bridge, where fetching pauses and resumes, and where
offsets are committed (auto-commit is off; only acknowledged outcomes move a commit point)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.helpers import create_ssl_context

from bridge.config import Config, KafkaConfig

TP = tuple[str, int]


def client_options(cfg: KafkaConfig) -> dict[str, Any]:
    """Connection settings shared by the consumer and the producer (secrets revealed only here)."""
    opts: dict[str, Any] = {"bootstrap_servers": cfg.bootstrap, "security_protocol": cfg.security_protocol}
    if cfg.security_protocol.startswith("SASL"):
        opts.update(
            sasl_mechanism=cfg.sasl_mechanism,
            sasl_plain_username=cfg.sasl_username,
            sasl_plain_password=cfg.sasl_password.reveal(),
        )
    if cfg.security_protocol.endswith("SSL"):
        context = create_ssl_context(
            cafile=cfg.ssl_cafile or None,
            certfile=cfg.ssl_certfile or None,
            keyfile=cfg.ssl_keyfile or None,
            password=cfg.ssl_key_password.reveal() or None,
        )
        context.check_hostname = cfg.ssl_check_hostname
        opts["ssl_context"] = context
    return opts


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self,
        on_revoked: Callable[[list[TP]], Awaitable[None]],
        on_assigned: Callable[[list[TP]], Awaitable[None]],
    ) -> None:
        self._revoked = on_revoked
        self._assigned = on_assigned

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._revoked([(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._assigned([(tp.topic, tp.partition) for tp in assigned])


def make_consumer(
    config: Config,
    on_revoked: Callable[[list[TP]], Awaitable[None]],
    on_assigned: Callable[[list[TP]], Awaitable[None]],
) -> AIOKafkaConsumer:
    """A group consumer with auto-commit off and fetch sizes bounded by the memory caps."""
    k = config.kafka
    cap = config.limits.max_buffered_bytes
    consumer = AIOKafkaConsumer(
        **client_options(k),
        group_id=k.group_id,
        enable_auto_commit=False,
        auto_offset_reset=k.auto_offset_reset,
        max_poll_records=k.fetch_max_records,
        fetch_max_wait_ms=k.fetch_max_wait_ms,
        fetch_max_bytes=max(64 * 1024, min(16 * 1024 * 1024, cap // 4)),
        max_partition_fetch_bytes=max(64 * 1024, min(1024 * 1024, cap // 16)),
        session_timeout_ms=k.session_timeout_ms,
        heartbeat_interval_ms=k.heartbeat_interval_ms,
        max_poll_interval_ms=k.max_poll_interval_ms,
        isolation_level="read_committed",
    )
    consumer.subscribe(list(k.input_topics), listener=_Listener(on_revoked, on_assigned))
    return consumer


def to_kafka(tps: dict[TP, int]) -> dict[TopicPartition, int]:
    return {TopicPartition(t, p): o for (t, p), o in tps.items()}
