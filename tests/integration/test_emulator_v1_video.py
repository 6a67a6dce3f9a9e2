"""The v1 realtime video endpoint over real loopback sockets: one reply per frame, the face rule, faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bridge.tools.emulator import Emulator, Faults
from bridge.tools.emulator.v1.testing import jpeg
from bridge.tools.emulator.v1.video import FaceConfig, FaceIds, inspect_jpeg, measure_faces

KEY = "video-key"
HEADERS = {"X-Hume-Api-Key": KEY}
DEFAULT = {"image": {"type": "image/jpeg"}, "face": {"threshold": 0.9, "min_size": 60}}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY, faults=Faults(pace_factor=100.0, video_burst_frames=50)) as running:
        yield running


def video_url(emu: Emulator) -> str:
    return emu.ws_base_url + "/v1/expression/video/realtime"


async def recv(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        message = orjson.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def rest(ws: ClientConnection) -> list[dict[str, Any]]:
    out = []
    async with asyncio.timeout(10):
        try:
            while True:
                out.append(orjson.loads(await ws.recv()))
        except ConnectionClosed:
            return out


def faces_of(
    emu: Emulator, image: bytes, ids: FaceIds, config: FaceConfig | None = None
) -> list[dict[str, Any]]:
    return measure_faces(inspect_jpeg(image), config or FaceConfig(), ids, emu.vocabulary)


async def test_one_reply_per_frame_in_order_with_the_face_rule(emu: Emulator) -> None:
    three, uniform, five = jpeg(faces=3, seed=1), jpeg(uniform=True), jpeg(faces=5, seed=2)
    async with connect(video_url(emu), additional_headers=HEADERS) as ws:
        created = await recv(ws)
        session_id = created["session_id"]
        assert created == {"type": "session.created", "session_id": session_id, **DEFAULT}
        for frame in (three, b"not a jpeg", uniform, five, three):
            await ws.send(frame)
        replies = [await recv(ws) for _ in range(5)]
        await ws.send('{"type": "session.close"}')
        closing = await rest(ws)
        assert ws.close_code == 1000
    ids = FaceIds()
    first = faces_of(emu, three, ids)
    assert replies[0] == {"type": "measurement.result", "frame_id": 0, "faces": first}
    assert replies[1] == {
        "type": "error",
        "code": "invalid_image_frame",
        "message": "The image is not a JPEG.",
        "retryable": True,
    }
    assert replies[2] == {"type": "measurement.result", "frame_id": 1, "faces": []}
    assert replies[3] == {"type": "measurement.result", "frame_id": 2, "faces": faces_of(emu, five, ids)}
    assert replies[4] == {"type": "measurement.result", "frame_id": 3, "faces": faces_of(emu, three, ids)}
    # the two largest faces are measured, the rest listed with nulls; the ids stay with the face
    assert [f["face_id"] for f in replies[0]["faces"]] == [0, 1, None]
    assert replies[4]["faces"] == first
    assert all(f["expressions"] is None and f["descriptions"] is None for f in first[2:])
    for face in first:
        x0, y0, x1, y1 = face["bbox"]
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240 and face["confidence"] >= 0.9
    measured = sum(
        1
        for r in replies
        if r["type"] == "measurement.result"
        for f in r["faces"]
        if f["face_id"] is not None
    )
    assert closing == [
        {
            "type": "session.closed",
            "session_id": session_id,
            "reason": "client_request",
            "received": {"frames": 4},
            "produced": {"measurements": measured},
        }
    ]


async def test_config_threshold_min_size_and_update_rules(emu: Emulator) -> None:
    image = jpeg(faces=20, seed=4)
    async with connect(video_url(emu), additional_headers=HEADERS) as ws:
        await recv(ws)
        await ws.send('{"type": "session.update", "face": {"threshold": 0.95, "min_size": 100}}')
        updated = {
            "type": "session.updated",
            "image": {"type": "image/jpeg"},
            "face": {"threshold": 0.95, "min_size": 100},
        }
        assert await recv(ws) == updated
        await ws.send(image)
        faces = (await recv(ws))["faces"]
        assert faces == faces_of(emu, image, FaceIds(), FaceConfig(0.95, 100))
        assert 0 < len(faces) < 20
        assert all(
            f["confidence"] >= 0.95 and min(f["bbox"][2] - f["bbox"][0], f["bbox"][3] - f["bbox"][1]) >= 100
            for f in faces
        )
        await ws.send('{"type": "session.update"}')
        assert (await recv(ws))["code"] == "config_invalid"
        assert [m["reason"] for m in await rest(ws)] == ["error"] and ws.close_code == 1008
    async with connect(video_url(emu), additional_headers=HEADERS) as ws:
        await recv(ws)
        await ws.send('{"type": "session.update", "image": {"type": "image/png"}, "face": {"threshold": 2}}')
        assert await recv(ws) == {
            "type": "error",
            "code": "config_invalid",
            "message": "Invalid configuration: image.type must be 'image/jpeg';"
            " face.threshold must be a number from 0 to 1.",
            "retryable": False,
        }


async def test_rate_limit_size_limits_and_internal_errors(emu: Emulator) -> None:
    image = jpeg(faces=1, seed=7)
    emu.faults.pace_factor = 0.001
    emu.faults.video_burst_frames = 3
    async with connect(video_url(emu), additional_headers=HEADERS, max_size=None) as ws:
        session_id = (await recv(ws))["session_id"]
        for _ in range(5):
            await ws.send(image)
        kinds = [(await recv(ws)).get("code", "result") for _ in range(5)]
        assert kinds == ["result", "result", "result", "rate_limited", "rate_limited"]
        await ws.send(bytes(2_000_001))
        assert await recv(ws) == {
            "type": "error",
            "code": "message_too_large",
            "message": "Image frames are limited to 2000000 bytes.",
            "retryable": False,
        }
        assert (await rest(ws))[0]["received"] == {"frames": 3}
    run = emu.runs.get(session_id)
    assert run is not None and run.metered_seconds == 10.0 and run.bytes_received == 3 * len(image)
    emu.faults.pace_factor = 100.0
    emu.faults.video_burst_frames = 50
    emu.faults.video_internal_errors = 6
    emu.faults.video_internal_error_retryable = False
    async with connect(video_url(emu), additional_headers=HEADERS) as ws:
        session_id = (await recv(ws))["session_id"]
        for _ in range(5):
            await ws.send(image)
        failure = {
            "type": "error",
            "code": "internal_error",
            "message": "The frame could not be measured.",
            "retryable": False,
        }
        assert await rest(ws) == [failure] * 5 + [
            {
                "type": "session.closed",
                "session_id": session_id,
                "reason": "error",
                "received": {"frames": 5},
                "produced": {"measurements": 0},
            }
        ]
        assert ws.close_code == 1008
    assert emu.faults.video_internal_errors == 1
    run = emu.runs.get(session_id)
    assert run is not None and [e["kind"] for e in run.events] == ["inference_failed"] * 5
    emu.faults.video_internal_error_retryable = True
    async with connect(video_url(emu), additional_headers=HEADERS) as ws:
        await recv(ws)
        await ws.send(image)
        await ws.send(image)
        first, second = await recv(ws), await recv(ws)
        assert (first["code"], first["retryable"], second["type"]) == (
            "internal_error",
            True,
            "measurement.result",
        )
        assert second["frame_id"] == 0


async def test_too_many_pixels_and_undecodable(emu: Emulator) -> None:
    from bridge.tools import samples as S

    async with connect(video_url(emu), additional_headers=HEADERS) as ws:
        await recv(ws)
        await ws.send(S.jpeg_claiming(3841, 2160))
        assert (await recv(ws))["message"] == "The image has 8296560 pixels; at most 8294400 are allowed."
        await ws.send(b"\xff\xd8\xff\xe0garbage")
        reply = await recv(ws)
        assert reply["code"] == "invalid_image_frame" and reply["message"].startswith(
            "The JPEG could not be decoded"
        )
        await ws.send(b"")
        assert (await recv(ws))["message"] == "The frame is empty."
