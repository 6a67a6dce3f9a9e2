"""Secrets never appear in logs, metrics, outcome records or error messages."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from bridge.tools import samples
from bridge.tools.emulator import Emulator
from tests.conftest import TopicFactory
from tests.integration.harness import (
    API_KEY,
    BridgeProcess,
    Collector,
    bridge_env,
    make_topics,
    outcomes,
    produce,
    wait_for,
)
from tests.integration.test_bridge_faults import http_get_raw

SASL_PASSWORD = "sasl-pw-Zq81xPl0"


async def test_key_and_sasl_password_never_leak(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """A bridge at DEBUG level, refused by Hume and then accepted, processing good and bad records: its
    whole output, its metrics and every record it published hold neither the key nor the password."""
    topics = await make_topics(new_topic, partitions=1)
    async with Emulator(api_key=API_KEY) as emu:
        emu.faults.refuse_all_keys = True
        env = bridge_env(
            kafka_bootstrap,
            emu.url,
            topics,
            BRIDGE_LOG_LEVEL="DEBUG",
            BRIDGE_KAFKA_SASL_PASSWORD=SASL_PASSWORD,
            BRIDGE_KAFKA_SASL_USERNAME="bridge",
        )
        proc = BridgeProcess(env, str(tmp_path / "bridge.log")).start()
        try:
            await wait_for(lambda: proc.has_event("upstream_outage"), 30, "the refused key is noticed")
            emu.faults.refuse_all_keys = False
            records = [
                (b"k", samples.text(4).encode(), []),
                (b"k", b"\xff\xfe", [("content-type", b"text/plain")]),
            ]
            await produce(kafka_bootstrap, topics.media, records)
            async with Collector(kafka_bootstrap, topics.outputs) as col:
                await col.until(lambda rs: len(outcomes(rs, topics)) >= 2, 60, "two outcomes")
            status, metrics = await http_get_raw(proc.http_port, "/metrics")
            assert status == 200
        finally:
            assert await proc.stop() == 0
    published = b"".join(repr(r.value).encode() + repr(r.headers).encode() for r in col.records)
    log = await asyncio.to_thread(Path(proc.log_path).read_bytes)
    assert b"hume_handshake_refused" in log
    for secret in (API_KEY.encode(), SASL_PASSWORD.encode()):
        assert secret not in log
        assert secret not in metrics
        assert secret not in published


def test_configuration_errors_name_the_variable_not_the_secret() -> None:
    """A start-up refusal names every bad setting and shows no secret value."""
    env = {
        "HUME_API_KEY": "hk-very-secret-9921",
        "BRIDGE_KAFKA_SASL_PASSWORD": SASL_PASSWORD,
        "BRIDGE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "BRIDGE_POOL_SIZE": "zero",
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run([sys.executable, "-m", "bridge", "run"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    text = done.stdout + done.stderr
    assert b"BRIDGE_POOL_SIZE" in text
    assert b"BRIDGE_KAFKA_SASL_USERNAME" in text
    assert b"hk-very-secret-9921" not in text
    assert SASL_PASSWORD.encode() not in text
