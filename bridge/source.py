"""The Kafka source: where a record enters the bridge, where fetching pauses and resumes, and where
offsets are committed (auto-commit is off; only acknowledged outcomes move a commit point)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    CoordinatorNotAvailableError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NotCoordinatorForGroupError,
    RebalanceInProgressError,
    RequestTimedOutError,
)
from aiokafka.helpers import create_ssl_context

from bridge import log as log_mod
from bridge.config import Config, KafkaConfig
from bridge.errors import KafkaUnavailable
from bridge.failures import probe_tcp

TP = tuple[str, int]
PROBE_TIMEOUT_S = 3.0
STOP_TIMEOUT_S = 3.0
# aiokafka's own lines about a bootstrap that fails; while the bridge waits for Kafka it says it in words.
BOOTSTRAP_LINES = ("Unable connect to", "Unable to bootstrap", "Unable to update metadata")


def describe_kafka_error(exc: BaseException) -> str:
    """A broker-side failure (commit, fetch, produce) in words, the library's name for it in parentheses."""
    name = type(exc).__name__
    if isinstance(exc, (KafkaConnectionError, NodeNotReadyError)):
        words = "lost the connection to the broker"
    elif isinstance(exc, (TimeoutError, KafkaTimeoutError, RequestTimedOutError)):
        words = "the broker did not answer in time"
    elif isinstance(exc, (CommitFailedError, RebalanceInProgressError, IllegalStateError)):
        words = "the group is rebalancing; the commit is repeated once it settles"
    elif isinstance(exc, (CoordinatorNotAvailableError, NotCoordinatorForGroupError)):
        words = "the group coordinator is not available"
    elif isinstance(exc, KafkaError):
        words = "the broker refused the request"
    else:
        words = "the Kafka client failed"
    return f"{words} ({name})"


async def unavailable(cfg: KafkaConfig, exc: BaseException) -> KafkaUnavailable:
    """The bridge's error for a client that could not bootstrap, naming the addresses and the cause.

    aiokafka says only "Unable to bootstrap"; the network is asked once, per address, why."""
    causes = []
    for address in cfg.bootstrap.split(","):
        failure = await probe_tcp(address, 9092, PROBE_TIMEOUT_S)
        if failure is not None:
            causes.append(failure.text)
    if not causes:
        causes.append(
            f"{cfg.bootstrap} accepts connections but the Kafka client could not start "
            f"({type(exc).__name__}); check BRIDGE_KAFKA_SECURITY_PROTOCOL and the TLS and SASL settings"
        )
    return KafkaUnavailable("; ".join(causes))


async def start_consumer(consumer: AIOKafkaConsumer, cfg: KafkaConfig) -> None:
    """Start the consumer: bootstrap, join the group, wait for partitions. Raises
    :class:`KafkaUnavailable` (in words) when the brokers cannot be reached."""
    try:
        with log_mod.muted("aiokafka", *BOOTSTRAP_LINES):
            await consumer.start()
    except KafkaConnectionError as exc:
        raise await unavailable(cfg, exc) from exc


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


async def stop_consumer(consumer: AIOKafkaConsumer, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Leave the group and close, under a deadline. aiokafka's ``stop`` first lets a join in progress
    finish, and a broker may hold a JoinGroup for half the session timeout: past the deadline the join is
    cancelled (the member never got partitions, so there is nothing to leave) and the connections closed."""
    try:
        async with asyncio.timeout(timeout_s):
            await consumer.stop()
    except TimeoutError:
        await consumer._client.close()  # what stop() would have closed after the join
