"""One settings table feeds ``run --help``, the README and the ConfigMap; misspelt variables are named."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from bridge.cli import build_parser
from bridge.config import (
    SETTINGS,
    Config,
    settings_env,
    unknown_variables,
    variable_names,
)

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from sync_settings import readme_with_settings  # noqa: E402


def test_readme_settings_section_is_the_table() -> None:
    """The README's configuration tables are exactly what the table renders (scripts/sync_settings.py)."""
    text = (ROOT / "README.md").read_text()
    assert readme_with_settings(text) == text, "README.md is stale: run scripts/sync_settings.py"
    for s in SETTINGS:
        assert f"`{s.name}`" in text


def test_configmap_is_the_table() -> None:
    """deploy/k8s/bridge.env is exactly what the table renders."""
    assert (ROOT / "deploy" / "k8s" / "bridge.env").read_text() == settings_env(), (
        "deploy/k8s/bridge.env is stale: run scripts/sync_settings.py"
    )


def test_every_setting_has_one_entry_and_a_real_field() -> None:
    """Names are unique, each path names a field of Config, and each has a meaning."""
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    paths = [s.path for s in SETTINGS]
    assert len(paths) == len(set(paths))
    for s in SETTINGS:
        assert s.meaning
        s.default  # noqa: B018 - raises AttributeError or KeyError if the path is wrong
    assert Config().hume.pool_size == next(s for s in SETTINGS if s.name == "BRIDGE_POOL_SIZE").default


def test_run_help_lists_every_setting_with_default_and_meaning(capsys: pytest.CaptureFixture[str]) -> None:
    """``hume-bridge run --help`` shows each variable, its default and its meaning."""
    with pytest.raises(SystemExit) as exc:
        build_parser(["run", "--help"]).parse_args(["run", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "see the README" not in out
    for s in SETTINGS:
        line = re.search(rf"^  {re.escape(s.name)}\b.* = (.*)$", out, re.MULTILINE)
        assert line is not None, s.name
        assert line.group(1) == (s.default_text or "(not set)")
    assert "BRIDGE_POOL_SIZE = 8" in out
    assert "Hume WebSocket sessions" in out


def test_top_level_help_lists_commands_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    """``hume-bridge --help`` names each command with one line of help, and no internal docstring."""
    with pytest.raises(SystemExit):
        build_parser(["--help"]).parse_args(["--help"])
    out = capsys.readouterr().out
    for name in ("run", "demo", "emulator", "produce", "bench", "broker", "tail"):
        assert re.search(rf"^    {name} +\S", out, re.MULTILINE), name
    assert "imported lazily" not in out
    assert "sub-command" not in out


def test_unknown_variables_are_named_with_the_closest_setting() -> None:
    """A misspelt setting is reported with the name it was probably meant to be; others are left alone."""
    env = {
        "BRIDGE_POOL_SIZ": "4",
        "BRIDGE_TYPO_VAR": "1",
        "HUME_APIKEY": "k",
        "BRIDGE_POOL_SIZE": "4",
        "BRIDGE_TEST_KAFKA_BOOTSTRAP": "kafka:9092",
        "PATH": "/bin",
        "HUME_API_KEY_FILE": "/k",
    }
    found = {u.name: u.suggestion for u in unknown_variables(env)}
    assert found == {
        "BRIDGE_POOL_SIZ": "BRIDGE_POOL_SIZE",
        "BRIDGE_TYPO_VAR": None,
        "HUME_APIKEY": "HUME_API_KEY",
    }
    text = str(next(u for u in unknown_variables(env) if u.name == "BRIDGE_POOL_SIZ"))
    assert text == (
        "BRIDGE_POOL_SIZ is not a setting of hume-bridge and is ignored; did you mean BRIDGE_POOL_SIZE?"
    )


def test_variable_names_include_secret_files() -> None:
    """Each secret may come from NAME_FILE, and that name is known (not reported as a typo)."""
    names = variable_names()
    assert {"HUME_API_KEY", "HUME_API_KEY_FILE", "BRIDGE_KAFKA_SASL_PASSWORD_FILE"} <= names
    assert "BRIDGE_POOL_SIZE_FILE" not in names
