"""The README's "Run it yourself", followed literally: broker, emulator, run, tail and produce as separate
processes, started by the README's own commands (on free ports), and the outcomes read from tail's output."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from bridge.tools.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # where the hume-bridge entry point is installed


def readme_blocks() -> list[str]:
    """The ``sh`` blocks of the README's "Run it yourself" section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Run it yourself", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.DOTALL)


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for: {what}")
        time.sleep(0.05)


class Terminal:
    """One shell running one README block, with its own output files."""

    def __init__(self, name: str, script: str, cwd: Path, env: dict[str, str]) -> None:
        self.name = name
        self.out = cwd / f"{name}.out"
        self.err = cwd / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            # exec: the last command of the block replaces the shell, so signals reach it as they would in
            # a terminal.
            lines = script.strip().splitlines()
            body = "\n".join([*lines[:-1], f"exec {lines[-1]}"])
            self.proc = subprocess.Popen(
                ["bash", "-euc", body], cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True
            )

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout_s: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def shell_env() -> dict[str, str]:
    """A clean terminal: none of the caller's BRIDGE_*/HUME_* variables, the venv's bin first on PATH, and a
    free HTTP port for run (the README's default 9400 may be taken on a shared machine)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "HUME_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["BRIDGE_HTTP_PORT"] = str(free_port())
    env["PYTHONUNBUFFERED"] = "1"
    return env


def test_readme_run_it_yourself(tmp_path: Path, shell_env: dict[str, str]) -> None:
    """Following the README: every input of produce --samples gets its outcome, shown by tail with stream,
    source and top expressions or the error code; run logs nothing at error level; all stop cleanly."""
    blocks = readme_blocks()
    assert [b.strip().splitlines()[-1] for b in blocks] == [
        "hume-bridge broker --port 9092 --env-file local.env",
        "hume-bridge emulator --port 8765 --api-key local-key",
        "hume-bridge run",
        "hume-bridge tail",
        "hume-bridge produce --samples",
    ]
    kafka_port, hume_port = str(free_port()), str(free_port())
    broker_cmd, emulator_cmd, run_cmd, tail_cmd, produce_cmd = (
        b.replace("9092", kafka_port).replace("8765", hume_port) for b in blocks
    )
    terminals: list[Terminal] = []
    try:
        broker = Terminal("broker", broker_cmd, tmp_path, shell_env)
        terminals.append(broker)
        wait_until(lambda: (tmp_path / "local.env").exists(), 60, "the broker's local.env")
        assert f"listening on 127.0.0.1:{kafka_port}" in broker.stdout()
        assert "export BRIDGE_KAFKA_IDEMPOTENCE=off" in broker.stdout()

        emulator = Terminal("emulator", emulator_cmd, tmp_path, shell_env)
        terminals.append(emulator)
        wait_until(lambda: "emulator listening" in emulator.stdout(), 30, "the emulator to listen")

        run = Terminal("run", run_cmd, tmp_path, shell_env)
        terminals.append(run)
        wait_until(lambda: "partitions_assigned" in run.stdout(), 60, "run to join its group")

        tail = Terminal("tail", tail_cmd, tmp_path, shell_env)
        terminals.append(tail)
        wait_until(lambda: "tailing" in tail.stderr(), 30, "tail to be positioned at the end")

        produced = subprocess.run(
            ["bash", "-euc", produce_cmd],
            cwd=tmp_path,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert produced.returncode == 0, produced.stderr
        assert "sent 7 records" in produced.stdout

        def outcome_lines() -> list[str]:
            return [ln for ln in tail.stdout().splitlines() if ln[13:].startswith(("prediction", "error"))]

        wait_until(lambda: len(outcome_lines()) >= 7, 60, "an outcome line for each of the 7 records")
        out = tail.stdout()
        rows = [ln.split(None, 4) for ln in out.splitlines()]
        by_stream: dict[str, list[list[str]]] = {}
        for row in rows:
            by_stream.setdefault(row[2], []).append(row)
        predictions = {s: [r for r in rs if r[1] == "prediction"] for s, rs in by_stream.items()}
        assert len(predictions["call.wav"]) == 2
        assert all(r[4].startswith("prosody: ") for r in predictions["call.wav"])
        assert len(predictions["chat.txt"]) == 2
        assert predictions["chat.txt"][0][4].startswith("language: ")
        assert predictions["face.jpg"][0][4].startswith("face: ")
        assert re.fullmatch(r"hume\.media/\d+/\d+", predictions["face.jpg"][0][3])
        assert any(r[1] == "warning" and r[4].startswith("W0103 face:") for r in by_stream["blank.png"])
        (error,) = [r for r in by_stream["long.txt"] if r[1] == "error"]
        assert error[4].startswith("TEXT_TOO_LONG (bridge) ")
        assert len(outcome_lines()) == 7, out

        assert tail.stop(signal.SIGINT) == 0
        assert run.stop(signal.SIGTERM) == 0
        logged = [orjson.loads(ln) for ln in run.stdout().splitlines() if ln.startswith("{")]
        assert [e for e in logged if e.get("level") in ("error", "critical")] == []
        assert any(e["event"] == "bridge_stopped" for e in logged)
        assert emulator.stop(signal.SIGINT) == 0
        assert broker.stop(signal.SIGTERM) == 0
        assert not (tmp_path / "local.env").exists()
    finally:
        for terminal in reversed(terminals):
            terminal.kill()
