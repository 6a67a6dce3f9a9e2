"""The command line lists every sub-command and refuses unknown ones."""

from __future__ import annotations

import pytest

from bridge.cli import COMMANDS, build_parser


def test_every_design_command_is_offered() -> None:
    """run, demo, broker, emulator, produce, tail, bench and chaos are the product's commands."""
    assert set(COMMANDS) == {"run", "demo", "broker", "emulator", "produce", "tail", "bench", "chaos"}


def test_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown sub-command exits with usage error 2 and names the choices."""
    with pytest.raises(SystemExit) as exc:
        build_parser(["frobnicate"]).parse_args(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
