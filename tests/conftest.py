"""Shared fixtures: a real Kafka-protocol broker and fresh topics.

The broker is the embedded Tansu binary on a free loopback port, or the real cluster named by
``BRIDGE_TEST_KAFKA_BOOTSTRAP`` when that is set (needed for idempotence and transactions).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest

from bridge.tools.embedded import EmbeddedBroker

REAL_KAFKA = os.environ.get("BRIDGE_TEST_KAFKA_BOOTSTRAP", "")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap address of a running Kafka-protocol broker for the whole test session."""
    if REAL_KAFKA:
        yield REAL_KAFKA
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap


@pytest.fixture
def real_kafka() -> str:
    """Skip unless a real cluster is configured (idempotent producers, transactions)."""
    if not REAL_KAFKA:
        pytest.skip("needs BRIDGE_TEST_KAFKA_BOOTSTRAP (a real Kafka cluster)")
    return REAL_KAFKA


TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> TopicFactory:
    """Create a fresh, uniquely named topic: ``await new_topic("media", partitions=4)``."""

    async def create(prefix: str = "t", partitions: int = 1) -> str:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        finally:
            await admin.close()
        return name

    return create
