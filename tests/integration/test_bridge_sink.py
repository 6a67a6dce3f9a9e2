"""The Kafka sink against a real broker: idempotence falls back only when the broker refuses it."""

from __future__ import annotations

import logging

import pytest

from bridge.config import KafkaConfig
from bridge.errors import KafkaUnavailable
from bridge.metrics import Metrics
from bridge.sink import Sink
from bridge.tools.embedded import free_port
from tests.conftest import REAL_KAFKA


async def test_broker_refusing_producer_ids_falls_back_without_an_error_log(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The embedded broker refuses InitProducerId: the sink falls back to acks=all, says so in the metric,
    and nothing is logged at error level for this expected refusal."""
    if REAL_KAFKA:
        pytest.skip("a real cluster grants producer ids")
    metrics = Metrics()
    sink = Sink(KafkaConfig(bootstrap=kafka_bootstrap), metrics)
    with caplog.at_level(logging.DEBUG):
        await sink.start()
        try:
            assert sink.producer is not None and not sink.idempotent
        finally:
            await sink.stop()
    assert metrics.registry.get_sample_value("hume_bridge_producer_idempotence_disabled") == 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_unreachable_broker_is_not_taken_for_a_refusal_of_idempotence() -> None:
    """No broker at the address: start-up fails with the bridge's own error, naming the address and the
    cause in words; idempotence was not refused."""
    metrics = Metrics()
    address = f"127.0.0.1:{free_port()}"
    sink = Sink(KafkaConfig(bootstrap=address), metrics)
    with pytest.raises(KafkaUnavailable) as raised:
        await sink.start()
    assert raised.value.text == f"connection refused by {address}"
    assert sink.producer is None
    assert metrics.registry.get_sample_value("hume_bridge_producer_idempotence_disabled") == 0
