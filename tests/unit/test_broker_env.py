"""``hume-bridge broker``: the environment it prints for run, produce and tail (pure)."""

from __future__ import annotations

from bridge.config import load, load_kafka
from bridge.tools.broker import environment, export_lines, topics_of


def test_environment_names_the_broker_and_its_fast_start_settings() -> None:
    """Bootstrap, idempotence off and a short session timeout; they load as valid settings of run."""
    env = environment("127.0.0.1:9092", {})
    assert env["BRIDGE_KAFKA_BOOTSTRAP"] == "127.0.0.1:9092"
    assert env["BRIDGE_KAFKA_IDEMPOTENCE"] == "off"
    assert int(env["BRIDGE_KAFKA_SESSION_TIMEOUT_MS"]) < 30_000
    config = load({**env, "HUME_API_KEY": "k"})
    assert config.kafka.bootstrap == "127.0.0.1:9092"
    assert export_lines({"A": "1"}) == ["export A=1"]


def test_topic_settings_carry_over_and_are_the_topics_created() -> None:
    """Topic names set in the broker's terminal are created and passed on to the other terminals."""
    given = {"BRIDGE_INPUT_TOPICS": "calls,chats", "BRIDGE_ERRORS_TOPIC": "errs", "BRIDGE_POOL_SIZE": "3"}
    env = environment("h:1", given)
    assert env["BRIDGE_INPUT_TOPICS"] == "calls,chats"
    assert env["BRIDGE_ERRORS_TOPIC"] == "errs"
    assert "BRIDGE_POOL_SIZE" not in env
    assert topics_of(load_kafka(given)) == ["calls", "chats", "hume.predictions", "errs", "hume.warnings"]
