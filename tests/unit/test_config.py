"""Configuration from the environment: defaults, parsing, and one message naming every problem."""

from __future__ import annotations

import pytest

from bridge.config import Secret, load
from bridge.errors import ConfigError

BASE = {"HUME_API_KEY": "k-123"}


def test_defaults_match_the_documented_ones() -> None:
    """With only a key set, every setting takes its documented default."""
    c = load(BASE)
    assert c.kafka.bootstrap == "localhost:9092"
    assert c.kafka.group_id == "hume-bridge"
    assert c.kafka.input_topics == ("hume.media",)
    assert (c.kafka.predictions_topic, c.kafka.errors_topic, c.kafka.warnings_topic) == (
        "hume.predictions",
        "hume.errors",
        "hume.warnings",
    )
    assert c.hume.api == "v1"
    assert c.hume.url == "https://api.cloud.hume.ai"
    assert load({**BASE, "BRIDGE_HUME_API": "v0"}).hume.url == "wss://api.hume.ai/v0/stream/models"
    assert c.http_port == 9400
    assert c.kafka.idempotence == "auto"


def test_every_bad_variable_is_named_in_one_error() -> None:
    """Several mistakes are reported together, each by its variable name."""
    env = {
        "BRIDGE_POOL_SIZE": "many",
        "BRIDGE_HTTP_PORT": "70000",
        "BRIDGE_KAFKA_IDEMPOTENCE": "maybe",
        "BRIDGE_HUME_URL": "ws://x",
        "BRIDGE_DEFAULT_MODELS_TEXT": '{"ner": {}}',
    }
    with pytest.raises(ConfigError) as exc:
        load(env)
    text = str(exc.value)
    for name in (
        "HUME_API_KEY",
        "BRIDGE_POOL_SIZE",
        "BRIDGE_HTTP_PORT",
        "BRIDGE_KAFKA_IDEMPOTENCE",
        "BRIDGE_HUME_URL",
        "BRIDGE_DEFAULT_MODELS_TEXT",
    ):
        assert name in text
    assert len(exc.value.problems) == 6


def test_every_bad_v1_setting_is_named_with_the_others() -> None:
    """v1 settings out of range are reported together, each by name; the URL must suit the API."""
    env = {
        **BASE,
        "BRIDGE_V1_MAX_SESSIONS": "0",
        "BRIDGE_V1_MEASUREMENT_TIMER_MS": "2000",
        "BRIDGE_V1_IDLE_CLOSE_S": "soon",
        "BRIDGE_V1_MAX_UNSETTLED_S": "0",
        "BRIDGE_V1_FACE_THRESHOLD": "1.5",
        "BRIDGE_V1_FACE_MIN_SIZE": "0",
        "BRIDGE_V1_PACING_LEAD_S": "0.01",
        "BRIDGE_HUME_API": "v2",
    }
    with pytest.raises(ConfigError) as exc:
        load(env)
    names = [p.split(":")[0] for p in exc.value.problems]
    assert names == [
        "BRIDGE_HUME_API",
        "BRIDGE_V1_MAX_SESSIONS",
        "BRIDGE_V1_IDLE_CLOSE_S",
        "BRIDGE_V1_MAX_UNSETTLED_S",
        "BRIDGE_V1_PACING_LEAD_S",
        "BRIDGE_V1_MEASUREMENT_TIMER_MS",
        "BRIDGE_V1_FACE_THRESHOLD",
        "BRIDGE_V1_FACE_MIN_SIZE",
    ]
    with pytest.raises(ConfigError) as exc:
        load({**BASE, "BRIDGE_HUME_URL": "wss://api.cloud.hume.ai"})
    assert "BRIDGE_HUME_URL: expected a http:// or https:// URL for BRIDGE_HUME_API=v1" in str(exc.value)


def test_secrets_from_files_never_print(tmp_path: pytest.TempPathFactory) -> None:
    """A key read from *_FILE is used but never shown by repr or str of the configuration."""
    path = tmp_path / "key"  # type: ignore[operator]
    path.write_text("super-secret-key\n")
    c = load({"HUME_API_KEY_FILE": str(path), "BRIDGE_KAFKA_SASL_PASSWORD": "pw-secret"})
    assert c.hume.api_key.reveal() == "super-secret-key"
    assert "super-secret-key" not in repr(c)
    assert "pw-secret" not in repr(c)
    assert str(Secret("x")) == "Secret('********')"


def test_sasl_requires_credentials_and_output_topics_cannot_be_inputs() -> None:
    """Cross-field problems are reported too."""
    env = {**BASE, "BRIDGE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "BRIDGE_INPUT_TOPICS": "a,hume.errors"}
    with pytest.raises(ConfigError) as exc:
        load(env)
    text = str(exc.value)
    assert "BRIDGE_KAFKA_SASL_USERNAME" in text
    assert "BRIDGE_INPUT_TOPICS" in text
