"""The shipped ConfigMap names every non-secret setting the bridge reads, and each value loads."""

from __future__ import annotations

import re
from pathlib import Path

from bridge.config import load, variable_names

ENV_FILE = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "bridge.env"
SECRETS = {
    "HUME_API_KEY",
    "HUME_API_KEY_FILE",
    "BRIDGE_KAFKA_SASL_USERNAME",
    "BRIDGE_KAFKA_SASL_PASSWORD",
    "BRIDGE_KAFKA_SASL_PASSWORD_FILE",
    "BRIDGE_KAFKA_SSL_KEY_PASSWORD",
    "BRIDGE_KAFKA_SSL_KEY_PASSWORD_FILE",
}


def _entries() -> tuple[dict[str, str], set[str]]:
    values: dict[str, str] = {}
    commented: set[str] = set()
    for line in ENV_FILE.read_text().splitlines():
        if m := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            values[m.group(1)] = m.group(2)
        elif m := re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=.*", line):
            commented.add(m.group(1))
    return values, commented


def test_configmap_lists_every_setting_and_only_known_ones() -> None:
    """No setting is missing from the ConfigMap, none is misspelt, and no secret is in it."""
    values, commented = _entries()
    known = variable_names()
    assert set(values) | commented == known - SECRETS
    assert not (set(values) & SECRETS)


def test_configmap_values_are_valid_configuration() -> None:
    """The values load without a configuration error (with a key supplied as the Secret would)."""
    values, _ = _entries()
    config = load({**values, "HUME_API_KEY": "from-the-secret"})
    assert config.hume.pool_size == int(values["BRIDGE_POOL_SIZE"])
    assert dict(config.hume.default_models["audio"]) == {"prosody": {}}
