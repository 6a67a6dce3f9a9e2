"""``hume-bridge tail`` against the real broker, ``broker`` on a taken port, and ``run``'s start-up warning
about unknown variables."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import orjson

from tests.conftest import TopicFactory
from tests.integration.harness import produce


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "HUME_"))}
    return {**env, **extra}


async def test_tail_json_from_the_beginning_reads_what_is_there(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """--from-beginning --json --count N prints the N records already on the topic, as JSON, and exits 0."""
    topic = await new_topic("tail", partitions=2)
    values = [
        {"stream_id": "a", "source": {"topic": "m", "partition": 0, "offset": 1}, "models": {}},
        {"stream_id": "b", "source": {"topic": "m", "partition": 0, "offset": 2}, "error": {"code": "X"}},
    ]
    await produce(kafka_bootstrap, topic, [(v["stream_id"].encode(), orjson.dumps(v), []) for v in values])
    args = ["--topics", topic, "--from-beginning", "--json", "--count", "2", "--bootstrap", kafka_bootstrap]
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bridge", "tail", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
    )
    assert done.returncode == 0, done.stderr
    printed = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert sorted((p["key"], p["topic"], p["value"]["stream_id"]) for p in printed) == [
        ("a", topic, "a"),
        ("b", topic, "b"),
    ]
    assert f"tailing {topic} on {kafka_bootstrap} (from the beginning)" in done.stderr


async def test_tail_names_a_missing_topic_and_exits_1(kafka_bootstrap: str) -> None:
    """A topic that does not exist is named, with how to create it locally."""
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "bridge",
            "tail",
            "--topics",
            "no-such-topic-x1",
            "--bootstrap",
            kafka_bootstrap,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
    )
    assert done.returncode == 1
    assert "no such topic: no-such-topic-x1" in done.stderr
    assert "hume-bridge broker" in done.stderr


def test_run_warns_about_a_misspelt_setting_with_the_closest_name() -> None:
    """BRIDGE_POOL_SIZ is logged at start-up as unknown, with BRIDGE_POOL_SIZE suggested, next to the
    configuration error that names every bad variable (exit code 2)."""
    env = _clean_env(
        BRIDGE_POOL_SIZ="4", BRIDGE_TYPO_VAR="1", BRIDGE_HUME_API="v0", BRIDGE_HUME_URL="http://nowhere"
    )
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "run"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 2
    warnings = {e["variable"]: e for e in map(orjson.loads, done.stdout.splitlines())}
    assert warnings["BRIDGE_POOL_SIZ"]["did_you_mean"] == "BRIDGE_POOL_SIZE"
    assert warnings["BRIDGE_POOL_SIZ"]["level"] == "warning"
    assert warnings["BRIDGE_POOL_SIZ"]["event"] == "unknown_setting"
    assert warnings["BRIDGE_TYPO_VAR"]["did_you_mean"] is None
    assert "HUME_API_KEY: required" in done.stderr
    assert "BRIDGE_HUME_URL: expected a ws:// or wss:// URL for BRIDGE_HUME_API=v0" in done.stderr


def test_broker_on_a_taken_port_says_so() -> None:
    """hume-bridge broker on a port already in use exits 1 naming the address and the way out."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "bridge", "broker", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            env=_clean_env(),
        )
    assert done.returncode == 1
    assert f"127.0.0.1:{port} is in use" in done.stderr
    assert "--port 0" in done.stderr
