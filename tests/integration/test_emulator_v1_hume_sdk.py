"""Hume's own v1 client, ``hume-expression-measurement``, drives the emulator unchanged."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from hume_expression_measurement import AsyncExpressionMeasurementClient
from hume_expression_measurement.environment import ExpressionMeasurementClientEnvironment
from hume_expression_measurement.types import (
    AudioMeasurementResult,
    AudioSessionClosed,
    AudioSessionCreated,
    SessionClose,
    UtteranceEnd,
    UtteranceStart,
    VideoMeasurementResult,
    VideoSessionCreated,
)

from bridge.tools.emulator import Emulator, Faults
from bridge.tools.emulator.v1.testing import jpeg, silence, tone, wav

KEY = "sdk-key"


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY, faults=Faults(pace_factor=50.0, audio_burst_ms=20_000)) as running:
        yield running


def client(emu: Emulator) -> AsyncExpressionMeasurementClient:
    environment = ExpressionMeasurementClientEnvironment(base=emu.http_url, production=emu.ws_base_url)
    return AsyncExpressionMeasurementClient(api_key=KEY, environment=environment)


async def test_sdk_realtime_audio_and_upload_agree(emu: Emulator) -> None:
    audio = silence(400) + tone(4600) + silence(1000)
    hume = client(emu)
    received: list[object] = []
    async with hume.audio.connect() as socket:
        for i in range(0, len(audio), 3200):
            await socket.send_audio_frame(audio[i : i + 3200])
            await asyncio.sleep(0.001)
        await socket.send_audio_session_close(SessionClose(type="session.close"))
        async with asyncio.timeout(10):
            async for message in socket:
                received.append(message)
    assert isinstance(received[0], AudioSessionCreated)
    kinds = [type(m).__name__ for m in received[1:]]
    assert kinds == [
        "UtteranceStart",
        "AudioMeasurementResult",
        "AudioMeasurementResult",
        "UtteranceEnd",
        "AudioSessionClosed",
    ]
    start, interval, ended, end, closed = received[1:]
    assert isinstance(start, UtteranceStart) and start.audio_start_ms == 400
    assert isinstance(interval, AudioMeasurementResult) and interval.trigger == "interval"
    assert isinstance(ended, AudioMeasurementResult) and (ended.audio_start_ms, ended.audio_end_ms) == (
        400,
        5000,
    )
    assert isinstance(end, UtteranceEnd) and end.audio_end_ms == 5000
    assert isinstance(closed, AudioSessionClosed) and closed.received.audio_duration_ms == 6000
    uploaded = await hume.audio.measure(file=("a.wav", wav(audio), "audio/wav"))
    assert [m.model_dump() for m in uploaded.measurements] == [
        {k: v for k, v in m.model_dump().items() if k != "type"} for m in (interval, ended)
    ]
    runs = await hume.runs.list(mode="file")
    assert [r.run_id for r in runs.runs] == [uploaded.run_id]
    run = await hume.runs.get(closed.session_id)
    assert (run.status, run.close_code, run.metered_seconds) == ("ended", 1000, 10.0)
    events = await hume.runs.list_events(closed.session_id)
    assert events.events == [] and events.at_cap is False


async def test_sdk_realtime_video_and_upload(emu: Emulator) -> None:
    hume = client(emu)
    image = jpeg(faces=2, seed=5)
    async with hume.video.connect() as socket:
        await socket.send_image_frame(image)
        messages = []
        async with asyncio.timeout(10):
            async for message in socket:
                messages.append(message)
                if len(messages) == 2:
                    break
    created, result = messages
    assert isinstance(created, VideoSessionCreated) and created.face.min_size == 60
    assert isinstance(result, VideoMeasurementResult) and [f.face_id for f in result.faces] == [0, 1]
    uploaded = await hume.video.measure(file=[("a.jpg", image, "image/jpeg")])
    assert [f.model_dump() for f in uploaded.measurements[0].faces] == [f.model_dump() for f in result.faces]


async def test_sdk_reconnects_after_server_shutdown_and_resends_the_update(emu: Emulator) -> None:
    """Hume's reconnecting socket treats the emulator's server_shutdown as Hume's: a new session follows,
    configured with the last session.update."""
    from hume_expression_measurement.reconnect import reconnecting
    from hume_expression_measurement.types import AudioSessionUpdate, AudioSessionUpdated

    state = random.getstate()
    random.seed(31)  # the client's first reconnect delay is drawn from 1-5 s: this seed gives 1.05 s
    try:
        hume = client(emu)
        seen: list[object] = []
        async with reconnecting(hume.audio) as socket:
            await socket.send_audio_session_update(
                AudioSessionUpdate(type="session.update", measurement_timer_ms=4000)
            )
            async with asyncio.timeout(15):
                async for message in socket:
                    seen.append(message)
                    if isinstance(message, AudioSessionUpdated) and len(seen) == 2:
                        assert emu.shutdown_sessions() == 1
                    if len(seen) == 5:
                        break
    finally:
        random.setstate(state)
    first, updated, closed, created, again = seen
    assert isinstance(first, AudioSessionCreated) and isinstance(created, AudioSessionCreated)
    assert isinstance(closed, AudioSessionClosed) and closed.reason == "server_shutdown"
    assert created.session_id != first.session_id
    assert isinstance(updated, AudioSessionUpdated) and isinstance(again, AudioSessionUpdated)
    assert again.measurement_timer_ms == 4000
    assert emu.stats.v1.sessions_opened == {"audio": 2}
