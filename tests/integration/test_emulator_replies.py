"""Every reply code and prediction shape over real loopback sockets, each asserting the exact reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from bridge.tools import samples as S
from bridge.tools.emulator import Emulator
from bridge.tools.emulator.labels import EMOTIONS, LANGUAGE_EMOTIONS, SENTIMENT, TOXICITY
from bridge.tools.emulator.predictions import scores
from bridge.tools.emulator.protocol import Engine, Session

AUDIO = {"prosody": {}, "burst": {}}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(request_log_size=1000) as running:
        yield running


@pytest.fixture
async def ws(emu: Emulator) -> AsyncIterator[ClientConnection]:
    async with connect(emu.url) as client:
        yield client


async def ask(ws: ClientConnection, frame: bytes | str) -> Any:
    async with asyncio.timeout(10):
        await ws.send(frame, text=True)
        return orjson.loads(await ws.recv())


def core_reply(*frames: bytes, job_id: str = "") -> Any:
    """What the pure core answers to the last of ``frames`` on a fresh connection."""
    session = Session(Engine(), job_id or "0" * 32)
    replies = [session.handle(f).body for f in frames]
    return orjson.loads(replies[-1])


def err(code: str, message: str, payload_id: str | None = "p") -> dict[str, str]:
    reply = {"error": message, "code": code}
    if payload_id is not None:
        reply["payload_id"] = payload_id
    return reply


ERRORS: list[tuple[str, bytes | str, dict[str, str]]] = [
    ("E0100", "{not json", err("E0100", "The WebSocket payload must be a valid JSON object.", None)),
    (
        "E0101",
        S.v0_request("aGk=", {"face": {}}, payload_id="p", payloadId="q"),
        err("E0101", "Invalid request: payloadId: extra inputs are not permitted."),
    ),
    (
        "E0101-window",
        S.v0_request(S.b64(S.wav(1)), AUDIO, payload_id="p", stream_window_ms=10001),
        err("E0101", "Invalid request: stream_window_ms: input should be between 500 and 10000."),
    ),
    (
        "E0102",
        S.v0_request(S.b64(S.png()), {"prosody": {}}, payload_id="p"),
        err("E0102", "Model(s) prosody not compatible with the media provided: detected image (png)."),
    ),
    (
        "E0200",
        S.v0_request(S.b64(S.png_claiming(64, 64)), {"face": {}}, payload_id="p"),
        err(
            "E0200",
            "Media could not be parsed into a known file format: png that cannot be decoded: cannot load this"
            " image.",
        ),
    ),
    (
        "E0201",
        S.v0_request("%%%", {"face": {}}, payload_id="p"),
        err("E0201", "Media could not be decoded as a base64 encoded string."),
    ),
    (
        "E0202",
        S.v0_request(S.b64(S.wav(0)), AUDIO, payload_id="p"),
        err("E0202", "No audio signal could be inferred from the media provided."),
    ),
    (
        "E0203",
        S.v0_request(S.b64(S.wav(5.5)), AUDIO, payload_id="p"),
        err(
            "E0203",
            "Audio is too long: the streaming limit is 5000 ms, received 5500 ms."
            " Split it into shorter payloads.",
        ),
    ),
    (
        "E0204",
        S.v0_request(S.b64(S.webm(9, video=True)), {"face": {}}, payload_id="p"),
        err(
            "E0204",
            "Video is too long: the streaming limit is 5000 ms, received 9000 ms."
            " Send frames as images instead.",
        ),
    ),
    (
        "E0205",
        S.v0_request(S.b64(S.jpeg_claiming(3000, 4500)), {"face": {}}, payload_id="p"),
        err(
            "E0205",
            "Image is too large: streaming supports images up to 3000x3000 px, received 3000x4500 px.",
        ),
    ),
    (
        "E0206",
        S.v0_request("a" * 10_001, {"language": {}}, payload_id="p", raw_text=True),
        err("E0206", "Text is too long: the streaming limit is 10000 characters, received 10001."),
    ),
    (
        "E0207",
        S.v0_request(S.b64(S.facemesh(12)), {"facemesh": {}}, payload_id="p"),
        err("E0207", "Too many facemeshes: the streaming limit is 10 faces, received 12."),
    ),
]


@pytest.mark.parametrize(("code", "frame", "expected"), ERRORS, ids=[e[0] for e in ERRORS])
async def test_error_codes(
    emu: Emulator, ws: ClientConnection, code: str, frame: bytes | str, expected: dict[str, str]
) -> None:
    """Each validation failure gets its code, its message and the payload id, and is logged as an error."""
    assert await ask(ws, frame) == expected
    (entry,) = emu.requests
    assert (entry.reply_kind, entry.code) == ("error", code.split("-")[0])
    assert emu.stats.replies_by_code == {code.split("-")[0]: 1}


async def test_out_of_credits_until_switched_back(emu: Emulator, ws: ClientConnection) -> None:
    """E0300 for every payload while out of credits; predictions again afterwards."""
    frame = S.v0_request("hello", {"language": {}}, raw_text=True, payload_id="p")
    emu.faults.out_of_credits = True
    for _ in range(3):
        assert await ask(ws, frame) == err(
            "E0300", "Out of credits: add credits to your account to continue using the API."
        )
    emu.faults.out_of_credits = False
    assert await ask(ws, frame) == core_reply(frame)
    assert emu.stats.replies_by_code == {"E0300": 3}


async def test_no_detection_warnings_nested_per_model(ws: ClientConnection) -> None:
    assert await ask(ws, S.v0_request(S.b64(S.png(uniform=True)), {"face": {}}, payload_id="p")) == {
        "payload_id": "p",
        "face": {"warning": "No faces detected.", "code": "W0103"},
    }
    assert await ask(ws, S.v0_request(S.b64(b"[]"), {"facemesh": {}}, payload_id="p")) == {
        "payload_id": "p",
        "facemesh": {"warning": "No facemeshes detected.", "code": "W0102"},
    }
    silence = S.v0_request(S.b64(S.wav(1, amplitude=0)), {"burst": {}}, payload_id="p", reset_stream=True)
    assert await ask(ws, silence) == {
        "payload_id": "p",
        "burst": {"warning": "No vocal bursts detected.", "code": "W0101"},
    }


async def test_top_level_warnings_when_asked(emu: Emulator, ws: ClientConnection) -> None:
    emu.faults.top_level_warnings = True
    assert await ask(ws, S.v0_request(S.b64(S.jpeg(uniform=True)), {"face": {}}, payload_id="p")) == {
        "warning": "No faces detected.",
        "code": "W0103",
        "payload_id": "p",
    }


async def test_face_reply_shape(ws: ClientConnection) -> None:
    frame = S.v0_request(S.b64(S.jpeg(320, 240)), {"face": {"facs": {}, "descriptions": {}}}, payload_id="f")
    reply = await ask(ws, frame)
    assert reply == core_reply(frame)
    (face,) = reply["face"]["predictions"]
    assert set(face) == {"frame", "time", "bbox", "prob", "face_id", "emotions", "facs", "descriptions"}
    assert (face["frame"], face["time"], face["face_id"]) == (0, None, "unknown")
    assert len(face["emotions"]) == 48 and len(face["facs"]) == 36 and len(face["descriptions"]) == 27


async def test_language_reply_is_the_documented_function_of_the_text(ws: ClientConnection) -> None:
    """Passage scores are seeded by the unit text and the model name, as docs/EMULATOR.md states."""
    frame = S.v0_request(
        "I love this.",
        {"language": {"granularity": "passage", "sentiment": {}, "toxicity": {}}},
        raw_text=True,
        payload_id="t",
    )
    assert await ask(ws, frame) == {
        "payload_id": "t",
        "language": {
            "predictions": [
                {
                    "text": "I love this.",
                    "position": {"begin": 0, "end": 12},
                    "emotions": scores(b"I love this.language", LANGUAGE_EMOTIONS),
                    "sentiment": scores(b"I love this.sentiment", SENTIMENT),
                    "toxicity": scores(b"I love this.toxicity", TOXICITY),
                }
            ]
        },
    }


async def test_audio_reply_shape_and_job_details(emu: Emulator, ws: ClientConnection) -> None:
    """Prosody and burst time ranges; job_details carries the connection's fixed 32-character job id."""
    first = await ask(ws, S.v0_request(S.b64(S.wav(2.0)), AUDIO, payload_id="a", job_details=True))
    job_id = first["job_details"]["job_id"]
    assert len(job_id) == 32
    assert first == core_reply(
        S.v0_request(S.b64(S.wav(2.0)), AUDIO, payload_id="a", job_details=True), job_id=job_id
    )
    assert first["prosody"]["predictions"][0]["time"] == {"begin": 0.0, "end": 2.0}
    assert sorted(e["name"] for e in first["burst"]["predictions"][0]["emotions"]) == sorted(EMOTIONS)
    again = await ask(ws, S.v0_request("x", {"language": {}}, raw_text=True, job_details=True))
    assert again["job_details"] == {"job_id": job_id}
    async with connect(emu.url) as other:
        reply = await ask(other, S.v0_request("x", {"language": {}}, raw_text=True, job_details=True))
        assert reply["job_details"]["job_id"] != job_id


async def test_facemesh_and_video_replies(ws: ClientConnection) -> None:
    mesh = S.v0_request(S.b64(S.facemesh(2)), {"facemesh": {}}, payload_id="m")
    assert await ask(ws, mesh) == core_reply(mesh)
    video = S.v0_request(S.b64(S.mp4(1.0, video=True)), {"face": {}, "burst": {}}, payload_id="v")
    reply = await ask(ws, video)
    assert [f["time"] for f in reply["face"]["predictions"]] == [0.0, 0.333333, 0.666667]
    assert reply["burst"]["predictions"][0]["time"] == {"begin": 0.0, "end": 1.0}


async def test_reset_stream_alone_gets_a_reply(emu: Emulator, ws: ClientConnection) -> None:
    assert await ask(ws, b'{"reset_stream": true, "payload_id": "r"}') == {"payload_id": "r"}
    assert await ask(ws, b'{"reset_stream": true}') == {}
    assert [(e.reply_kind, e.reset_stream) for e in emu.requests] == [("reset", True), ("reset", True)]


async def test_same_payload_same_reply_on_any_connection(emu: Emulator, ws: ClientConnection) -> None:
    frame = S.v0_request(S.b64(S.png(seed=5)), {"face": {}}, payload_id="same")
    first = await ask(ws, frame)
    async with connect(emu.url) as other:
        assert await ask(other, frame) == first


async def test_audio_window_is_per_connection_and_observable(emu: Emulator, ws: ClientConnection) -> None:
    """Earlier audio on the same connection shows as earlier time ranges; another connection starts fresh;
    reset_stream clears it. The request log names the payloads in each window."""
    await ask(ws, S.v0_request(S.b64(S.wav(1.0, seed=1)), AUDIO, payload_id="a1"))
    a2 = await ask(
        ws, S.v0_request(S.b64(S.wav(1.5, seed=2)), AUDIO, payload_id="a2", stream_window_ms=2000.0)
    )
    assert [p["time"] for p in a2["prosody"]["predictions"]] == [
        {"begin": 0.0, "end": 0.5},
        {"begin": 0.5, "end": 2.0},
    ]
    async with connect(emu.url) as other:
        b1 = await ask(other, S.v0_request(S.b64(S.wav(1.0, seed=3)), AUDIO, payload_id="b1"))
        assert [p["time"] for p in b1["prosody"]["predictions"]] == [{"begin": 0.0, "end": 1.0}]
    a3 = await ask(ws, S.v0_request(S.b64(S.wav(1.0, seed=4)), AUDIO, payload_id="a3", reset_stream=True))
    assert [p["time"] for p in a3["prosody"]["predictions"]] == [{"begin": 0.0, "end": 1.0}]
    log = {e.payload_id: (e.connection_id, e.window_payload_ids, e.reset_stream) for e in emu.requests}
    a_conn, b_conn = log["a1"][0], log["b1"][0]
    assert a_conn != b_conn
    assert log == {
        "a1": (a_conn, (), False),
        "a2": (a_conn, ("a1",), False),
        "b1": (b_conn, (), False),
        "a3": (a_conn, (), True),
    }


async def test_binary_frames_are_read_like_text(ws: ClientConnection) -> None:
    """A request in a binary frame gets the same reply as in a text frame."""
    frame = S.v0_request("hi", {"language": {}}, raw_text=True, payload_id="bin")
    await ws.send(frame)
    async with asyncio.timeout(10):
        assert orjson.loads(await ws.recv()) == core_reply(frame)
