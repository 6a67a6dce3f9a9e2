"""The v1 realtime audio endpoint over real loopback sockets: exact replies, pacing, frame rules, faults."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bridge.tools.emulator import Emulator, Faults
from bridge.tools.emulator.v1.scores import AUDIO_EXPRESSION_FLOOR, VOICE_ATTRIBUTE_FLOOR, scores, seed_of
from bridge.tools.emulator.v1.testing import silence, tone
from bridge.tools.emulator.v1.vocabulary import VocabularyKind

KEY = "test-key"
HEADERS = {"X-Hume-Api-Key": KEY}
PACE = 40.0  # pacing runs 40 times faster than real time: 20 s of audio take half a second
BURST_MS = 10_000  # the bucket absorbs a 250 ms stall of a loaded machine (10 s of audio at 40x)
CONFIG = {
    "audio": {"type": "audio/pcm", "encoding": "s16le", "sample_rate": 16000, "channels": 1},
    "measurement_timer_ms": 3000,
}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(
        api_key=KEY, faults=Faults(pace_factor=PACE, audio_burst_ms=BURST_MS), record_audio=True
    ) as running:
        yield running


def audio_url(emu: Emulator) -> str:
    return emu.ws_base_url + "/v1/expression/audio/realtime"


async def recv(ws: ClientConnection, timeout_s: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        message = orjson.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def rest(ws: ClientConnection, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Every message until the server closes."""
    out = []
    async with asyncio.timeout(timeout_s):
        try:
            while True:
                out.append(orjson.loads(await ws.recv()))
        except ConnectionClosed:
            return out


async def paced(ws: ClientConnection, audio: bytes, frame_bytes: int = 3200, pace: float = PACE) -> None:
    """Send ``audio`` in frames no faster than ``pace`` times real time."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent_ms = 0.0
    for i in range(0, len(audio), frame_bytes):
        frame = audio[i : i + frame_bytes]
        await ws.send(frame)
        sent_ms += len(frame) / 32
        wait = start + sent_ms / 1000 / pace - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)


def expected_result(
    emu: Emulator, audio: bytes, mid: int, uid: int, start: int, end: int, trigger: str
) -> dict[str, Any]:
    seed = seed_of(audio[start * 32 : end * 32])
    vocab = emu.vocabulary
    return {
        "type": "measurement.result",
        "measurement_id": mid,
        "utterance_id": uid,
        "audio_start_ms": start,
        "audio_end_ms": end,
        "trigger": trigger,
        "expressions": scores(seed, vocab.names(VocabularyKind.AUDIO_EXPRESSIONS), AUDIO_EXPRESSION_FLOOR),
        "voice_attributes": scores(seed, vocab.names(VocabularyKind.VOICE_ATTRIBUTES), VOICE_ATTRIBUTE_FLOOR),
    }


async def test_paced_speech_and_silence_get_the_exact_utterances_and_results(emu: Emulator) -> None:
    """1 s silence, 4 s tone, 2 s silence, 12 s tone, 1 s silence, closed: the times the rules imply."""
    audio = silence(1000) + tone(4000) + silence(2000) + tone(12000) + silence(1000)
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        created = await recv(ws)
        session_id = created["session_id"]
        assert created == {"type": "session.created", "session_id": session_id, **CONFIG}
        await paced(ws, audio)
        await ws.send(orjson.dumps({"type": "session.close"}).decode())
        messages = await rest(ws)
        assert ws.close_code == 1000
    assert messages == [
        {"type": "utterance.start", "utterance_id": 0, "audio_start_ms": 1000},
        expected_result(emu, audio, 0, 0, 1000, 4000, "interval"),
        # speech ends at 5000 (found after the 500 ms hangover); the last result ended 1000 ms earlier
        expected_result(emu, audio, 1, 0, 1000, 5000, "speech_ended"),
        {"type": "utterance.end", "utterance_id": 0, "audio_start_ms": 1000, "audio_end_ms": 5000},
        {"type": "utterance.start", "utterance_id": 1, "audio_start_ms": 7000},
        expected_result(emu, audio, 2, 1, 7000, 10000, "interval"),
        expected_result(emu, audio, 3, 1, 7000, 13000, "interval"),
        expected_result(emu, audio, 4, 1, 7000, 16000, "interval"),
        # the window holds the last 10 s of the utterance; no speech_ended: the last result ended at 19000
        expected_result(emu, audio, 5, 1, 9000, 19000, "interval"),
        {"type": "utterance.end", "utterance_id": 1, "audio_start_ms": 7000, "audio_end_ms": 19000},
        {
            "type": "session.closed",
            "session_id": session_id,
            "reason": "client_request",
            "received": {"audio_duration_ms": 20000, "frames": 200},
            "produced": {"utterances": 2, "measurements": 6},
        },
    ]
    run = emu.runs.get(session_id)
    assert run is not None and run.accepted_audio == audio
    assert run.accepted_sha256 == hashlib.sha256(audio).hexdigest()
    stats = emu.stats.v1.snapshot()
    assert stats["frames_accepted"] == {"audio": 200} and stats["audio_ms_received"] == 20000
    assert stats["results_sent"] == {"audio": 6} and stats["closes"] == {"client_request": 1}


async def test_short_utterance_gets_one_speech_ended_and_close_during_speech_ends_it(emu: Emulator) -> None:
    """A 300 ms tone is an utterance with one result; session.close while a tone is on ends that utterance."""
    audio = tone(300) + silence(700) + tone(1500)
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        session_id = (await recv(ws))["session_id"]
        await paced(ws, audio)
        await ws.send('{"type": "session.close"}')
        messages = await rest(ws)
    assert messages == [
        {"type": "utterance.start", "utterance_id": 0, "audio_start_ms": 0},
        expected_result(emu, audio, 0, 0, 0, 300, "speech_ended"),
        {"type": "utterance.end", "utterance_id": 0, "audio_start_ms": 0, "audio_end_ms": 300},
        {"type": "utterance.start", "utterance_id": 1, "audio_start_ms": 1000},
        expected_result(emu, audio, 1, 1, 1000, 2500, "speech_ended"),
        {"type": "utterance.end", "utterance_id": 1, "audio_start_ms": 1000, "audio_end_ms": 2500},
        {
            "type": "session.closed",
            "session_id": session_id,
            "reason": "client_request",
            "received": {"audio_duration_ms": 2500, "frames": 25},
            "produced": {"utterances": 2, "measurements": 2},
        },
    ]


async def test_a_burst_is_rate_limited_and_not_counted(emu: Emulator) -> None:
    """With a 1000 ms bucket, 20 frames of 100 ms sent at once: the first 10 pass, the rest are rate_limited
    (none of them measured or counted); resent paced, the stream continues without a gap."""
    emu.faults.pace_factor = 0.01  # the bucket refills at 10 ms of audio per second: no refill to speak of
    emu.faults.audio_burst_ms = 1000
    audio = tone(2000)
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        session_id = (await recv(ws))["session_id"]
        for i in range(0, len(audio), 3200):
            await ws.send(audio[i : i + 3200])
        messages = [await recv(ws) for _ in range(11)]
        assert messages[0] == {"type": "utterance.start", "utterance_id": 0, "audio_start_ms": 0}
        limited = {
            "type": "error",
            "code": "rate_limited",
            "message": "Audio is arriving faster than real time; resend this frame later.",
            "retryable": True,
        }
        assert messages[1:] == [limited] * 10
        await emu.wait_until(lambda: emu.stats.v1.rate_limited["audio"] == 10)
        await ws.send('{"type": "session.close"}')
        closing = await rest(ws)
    assert closing[-1]["received"] == {"audio_duration_ms": 1000, "frames": 10}
    run = emu.runs.get(session_id)
    assert run is not None and run.accepted_audio == audio[:32000]
    assert [e["kind"] for e in (run.events)] == ["rate_limited"] * 10


async def test_frame_rules(emu: Emulator) -> None:
    """Empty, odd-length and over-10-s frames are refused and the session goes on; a message over 1 MiB ends
    it with message_too_large, session.closed{error} and close code 1008."""
    async with connect(audio_url(emu), additional_headers=HEADERS, max_size=None) as ws:
        session_id = (await recv(ws))["session_id"]
        for frame, what in (
            (b"", "empty"),
            (b"\x00" * 3, "odd-length"),
            (bytes(320_002), "over 10 s (320000 bytes)"),
        ):
            await ws.send(frame)
            assert await recv(ws) == {
                "type": "error",
                "code": "invalid_audio_frame",
                "message": f"The audio frame is {what}; it was discarded.",
                "retryable": True,
            }
        await ws.send(bytes(320_000))  # exactly 10 s of silence: accepted (the pace bucket was full)
        await ws.send(bytes((1 << 20) + 2))
        assert await recv(ws) == {
            "type": "error",
            "code": "message_too_large",
            "message": "Messages are limited to 1048576 bytes.",
            "retryable": False,
        }
        assert await rest(ws) == [
            {
                "type": "session.closed",
                "session_id": session_id,
                "reason": "error",
                "received": {"audio_duration_ms": 10000, "frames": 1},
                "produced": {"utterances": 0, "measurements": 0},
            }
        ]
        assert ws.close_code == 1008
    run = emu.runs.get(session_id)
    assert run is not None
    assert (run.status, run.close_code, run.close_reason) == ("errored", 1008, "error")
    assert [e["kind"] for e in run.events] == ["invalid_audio_frame"] * 3 + ["message_too_large"]


async def test_session_update_rules(emu: Emulator) -> None:
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        await recv(ws)
        await ws.send('{"type": "session.update", "measurement_timer_ms": 5000}')
        assert await recv(ws) == {"type": "session.updated", **CONFIG, "measurement_timer_ms": 5000}
        await ws.send('{"type": "session.update"}')  # omitted fields return to their defaults
        assert await recv(ws) == {"type": "session.updated", **CONFIG}
        await ws.send("not json")
        assert (await recv(ws))["code"] == "message_invalid"
        await ws.send('{"type": "nonsense"}')
        assert await recv(ws) == {
            "type": "error",
            "code": "message_invalid",
            "message": "Unknown message type: nonsense.",
            "retryable": True,
        }
        await ws.send(silence(100))
        await ws.send('{"type": "session.update", "measurement_timer_ms": 4000}')
        assert await recv(ws) == {
            "type": "error",
            "code": "config_invalid",
            "message": "session.update is allowed only before the first audio frame.",
            "retryable": False,
        }
        closed = await rest(ws)
        assert [m["reason"] for m in closed] == ["error"] and ws.close_code == 1008
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        await recv(ws)
        await ws.send(
            '{"type": "session.update", "measurement_timer_ms": 2999, "audio": {"sample_rate": 8000}}'
        )
        assert await recv(ws) == {
            "type": "error",
            "code": "config_invalid",
            "message": "Invalid configuration: audio.sample_rate must be 16000;"
            " measurement_timer_ms must be an integer from 3000 to 10000.",
            "retryable": False,
        }


async def test_measurement_timer_applies(emu: Emulator) -> None:
    audio = tone(7000)
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        await recv(ws)
        await ws.send('{"type": "session.update", "measurement_timer_ms": 3500}')
        await recv(ws)
        await paced(ws, audio)
        await ws.send('{"type": "session.close"}')
        results = [
            (m["audio_start_ms"], m["audio_end_ms"], m["trigger"]) for m in await rest(ws) if "trigger" in m
        ]
    assert results == [(0, 3500, "interval"), (0, 7000, "interval")]


async def test_handshake_refusals_and_404(emu: Emulator) -> None:
    async def status(headers: dict[str, str], url: str | None = None) -> tuple[int, Any]:
        with pytest.raises(InvalidStatus) as exc:
            async with connect(url or audio_url(emu), additional_headers=headers, open_timeout=5):
                pass
        response = exc.value.response
        return response.status_code, orjson.loads(response.body) if response.body else None

    code, body = await status({})
    assert (
        code == 401
        and body["message"] == "Missing credentials: send X-Hume-Api-Key or Authorization: Bearer."
    )
    assert set(body) == {"message", "request_id"}
    assert (await status({"X-Hume-Api-Key": "wrong"}))[1]["message"] == "Invalid credentials."
    assert (await status({"Authorization": "Bearer wrong"}))[0] == 401
    assert (await status({"X-Hume-Api-Key": KEY, "Authorization": f"Bearer {KEY}"}))[0] == 401
    async with connect(audio_url(emu), additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        assert (await recv(ws))["type"] == "session.created"
    code, body = await status(HEADERS, emu.ws_base_url + "/v1/expression/nothing/realtime")
    assert code == 404 and body["code"] == "not_found" and body["type"] == "error"
    emu.faults.v1_handshake_status = 503
    assert await status(HEADERS) == (503, {"message": "Service temporarily unavailable"})
    emu.faults.v1_handshake_status = None
    emu.faults.refuse_all_keys = True
    assert (await status(HEADERS))[0] == 401
    emu.faults.refuse_all_keys = False
    emu.faults.handshake_rate_per_s = 1.0
    async with connect(audio_url(emu), additional_headers=HEADERS):
        pass
    assert await status(HEADERS) == (429, {"message": "API rate limit exceeded"})
    emu.faults.handshake_rate_per_s = None
    emu.faults.max_sessions_per_key = 1
    async with connect(audio_url(emu), additional_headers=HEADERS) as first:
        await recv(first)
        assert await status(HEADERS) == (429, {"message": "Too many concurrent sessions for this API key"})
    await emu.wait_until(lambda: not emu.v1.per_key)
    async with connect(audio_url(emu), additional_headers=HEADERS) as again:
        assert (await recv(again))["type"] == "session.created"
    assert emu.stats.v1.handshakes_refused == {"401": 5, "503": 1, "429": 2}


async def test_server_shutdown_idle_timeout_internal_error_and_drop(emu: Emulator) -> None:
    def closed(session_id: str, reason: str, ms: int = 0, frames: int = 0) -> dict[str, Any]:
        return {
            "type": "session.closed",
            "session_id": session_id,
            "reason": reason,
            "received": {"audio_duration_ms": ms, "frames": frames},
            "produced": {"utterances": 0, "measurements": 0},
        }

    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        sid = (await recv(ws))["session_id"]
        await ws.send(silence(100))
        await emu.wait_until(lambda: emu.stats.v1.frames_accepted["audio"] == 1)
        assert emu.shutdown_sessions() == 1
        assert await rest(ws) == [closed(sid, "server_shutdown", 100, 1)]
        assert ws.close_code == 1012
    emu.faults.server_shutdown_after_s = 0.2
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        sid = (await recv(ws))["session_id"]
        assert await rest(ws) == [closed(sid, "server_shutdown")]
    emu.faults.server_shutdown_after_s = None
    emu.faults.idle_timeout_s = 0.2
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        sid = (await recv(ws))["session_id"]
        assert await rest(ws) == [closed(sid, "idle_timeout")]
        assert ws.close_code == 1000
    emu.faults.idle_timeout_s = 60
    emu.faults.audio_internal_error_at_frame = 2
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        sid = (await recv(ws))["session_id"]
        await ws.send(silence(100))
        await ws.send(silence(100))
        assert await rest(ws) == [
            {
                "type": "error",
                "code": "internal_error",
                "message": "The audio could not be processed.",
                "retryable": False,
            },
            closed(sid, "error", 100, 1),
        ]
        assert ws.close_code == 1008
    emu.faults.audio_internal_error_at_frame = None
    emu.faults.drop_at_message = 2
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        sid = (await recv(ws))["session_id"]
        await ws.send(silence(100))
        await ws.send(silence(100))
        assert await rest(ws) == []
        assert ws.close_code == 1006
    run = emu.runs.get(sid)
    assert run is not None and (run.status, run.close_code, run.bytes_received) == ("errored", 1011, 3200)
    assert emu.stats.v1.dropped_connections == 1


async def test_latency_delays_replies_in_order(emu: Emulator) -> None:
    emu.faults.latency_s = 0.3
    async with connect(audio_url(emu), additional_headers=HEADERS) as ws:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await recv(ws)
        await ws.send(b"")
        await ws.send(b"\x00")
        first, second = await recv(ws), await recv(ws)
        assert loop.time() - start >= 0.3
        assert [first["message"], second["message"]] == [
            "The audio frame is empty; it was discarded.",
            "The audio frame is odd-length; it was discarded.",
        ]
