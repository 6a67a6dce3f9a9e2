"""v1 uploads and runs over real loopback sockets: exact bodies, every error, filters and pagination."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.asyncio.client import connect

from bridge.tools.emulator import Emulator, Faults
from bridge.tools.emulator.v1.testing import jpeg, silence, tone, wav
from bridge.tools.emulator.v1.video import FaceConfig, detect_faces, inspect_jpeg

KEY = "upload-key"
HEADERS = {"X-Hume-Api-Key": KEY}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    async with Emulator(api_key=KEY, faults=Faults(pace_factor=50.0, audio_burst_ms=20_000)) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


def form(files: list[tuple[bytes, str]], config: Any = None) -> aiohttp.FormData:
    data = aiohttp.FormData()
    for i, (body, content_type) in enumerate(files):
        data.add_field("file", body, filename=f"f{i}", content_type=content_type)
    if config is not None:
        raw = config if isinstance(config, bytes) else orjson.dumps(config)
        data.add_field("config", raw.decode(errors="replace"), content_type="application/json")
    return data


async def post(
    http: aiohttp.ClientSession, emu: Emulator, kind: str, data: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    url = f"{emu.http_url}/v1/expression/{kind}/file"
    async with http.post(url, data=data, headers=HEADERS if headers is None else headers) as response:
        return response.status, await response.json(), response.headers


async def stream(emu: Emulator, audio: bytes) -> list[dict[str, Any]]:
    url = emu.ws_base_url + "/v1/expression/audio/realtime"
    out: list[dict[str, Any]] = []
    async with connect(url, additional_headers=HEADERS) as ws:
        await ws.recv()
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(0, len(audio), 3200):
            await ws.send(audio[i : i + 3200])
            await asyncio.sleep(max(0.0, start + (i + 3200) / 32 / 1000 / 50 - loop.time()))
        await ws.send('{"type": "session.close"}')
        async for message in ws:
            out.append(orjson.loads(message))
    assert not [m for m in out if m["type"] == "error"]
    return out


async def test_audio_upload_equals_the_realtime_stream(emu: Emulator, http: aiohttp.ClientSession) -> None:
    audio = silence(500) + tone(6500) + silence(1000) + tone(800)
    streamed = await stream(emu, audio)
    for body, content_type in ((wav(audio), "audio/wav"), (audio, "application/octet-stream")):
        status, reply, _ = await post(http, emu, "audio", form([(body, content_type)]))
        assert status == 200
        assert reply == {
            "request_id": reply["request_id"],
            "run_id": reply["run_id"],
            "received": {"audio_duration_ms": 8800},
            "utterances": [
                {k: m[k] for k in ("utterance_id", "audio_start_ms", "audio_end_ms")}
                for m in streamed
                if m["type"] == "utterance.end"
            ],
            "measurements": [
                {k: v for k, v in m.items() if k != "type"}
                for m in streamed
                if m["type"] == "measurement.result"
            ],
        }
        assert [u["audio_start_ms"] for u in reply["utterances"]] == [500, 8000]
    status, reply, _ = await post(
        http, emu, "audio", form([(audio, "application/octet-stream")], {"measurement_timer_ms": 6000})
    )
    assert [(m["audio_end_ms"], m["trigger"]) for m in reply["measurements"]] == [
        (6500, "interval"),  # the first utterance ends at 7000, under 1 s later: no speech_ended
        (8800, "speech_ended"),
    ]
    run = emu.runs.get(reply["run_id"])
    assert run is not None and run.summary()["metered_seconds"] == 10.0 and run.mode == "file"
    assert run.config == {
        "schema": "v4",
        "audio": {"type": "audio/pcm", "encoding": "s16le", "sample_rate": 16000, "channels": 1},
        "measurement_timer_ms": 6000,
    }


@pytest.mark.parametrize(
    ("body", "config", "status", "code"),
    [
        (wav(tone(100), rate=8000), None, 400, "audio_decode_failed"),
        (wav(tone(100))[:-10], None, 400, "audio_decode_failed"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", None, 415, "unsupported_media_type"),
        (b"ID3\x03\x00\x00\x00\x00\x00\x00", None, 415, "unsupported_media_type"),
        (b"fLaC\x00\x00\x00\x22", None, 415, "unsupported_media_type"),
        (b"\x00\x00\x00\x18ftypmp42", None, 415, "unsupported_media_type"),
        (b"\x01\x02\x03", None, 400, "audio_decode_failed"),
        (tone(100), {"measurement_timer_ms": 1}, 400, "config_invalid"),
        (tone(100), {"other": 1}, 400, "config_invalid"),
        (tone(100), b"{not json", 400, "message_invalid"),
    ],
)
async def test_audio_upload_errors(
    emu: Emulator, http: aiohttp.ClientSession, body: bytes, config: Any, status: int, code: str
) -> None:
    got, reply, _ = await post(http, emu, "audio", form([(body, "application/octet-stream")], config))
    assert (got, reply["type"], reply["code"]) == (status, "error", code)
    assert set(reply) == {"type", "code", "message", "request_id"}
    failed = [r for r in emu.runs if r.status == "errored"]
    assert len(failed) == 1 and failed[0].metered_seconds == 0.0


async def test_upload_gate_errors(emu: Emulator, http: aiohttp.ClientSession) -> None:
    assert (await post(http, emu, "audio", form([(tone(100), "application/octet-stream")]), headers={}))[
        0
    ] == 401
    assert (await post(http, emu, "audio", b"plain", {**HEADERS, "Content-Type": "text/plain"}))[1][
        "code"
    ] == ("invalid_request")
    status, reply, _ = await post(http, emu, "audio", form([]))
    assert (status, reply["code"]) == (400, "invalid_request")
    emu.faults.upload_busy = True
    emu.faults.upload_retry_after_s = 7
    status, reply, headers = await post(http, emu, "audio", form([(tone(100), "application/octet-stream")]))
    assert (status, reply["code"], headers["Retry-After"]) == (503, "server_busy", "7")
    emu.faults.upload_busy = False
    emu.faults.latency_s = 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await post(http, emu, "audio", form([(tone(100), "application/octet-stream")])))[0] == 200
    assert loop.time() - started >= 0.3
    emu.faults.latency_s = 0.0
    async with http.get(emu.http_url + "/v1/expression/audio/file", headers=HEADERS) as response:
        assert (response.status, (await response.json())["code"]) == (405, "method_not_allowed")
    # a declared body over 25 MB is refused before it is read
    reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
    writer.write(
        b"POST /v1/expression/audio/file HTTP/1.1\r\nHost: x\r\nX-Hume-Api-Key: "
        + KEY.encode()
        + b"\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 25000001\r\n\r\n"
    )
    await writer.drain()
    async with asyncio.timeout(5):
        head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    writer.close()


async def test_video_upload_measures_every_image_and_keeps_face_ids(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    two, uniform = jpeg(faces=2, seed=11), jpeg(uniform=True)
    config = {"face": {"return_face_state": True}}
    status, reply, _ = await post(
        http, emu, "video", form([(two, "image/jpeg"), (uniform, "image/jpeg")], config)
    )
    assert status == 200 and reply["received"] == {"frames": 2}
    assert [m["frame_id"] for m in reply["measurements"]] == [0, 1]
    assert [f["face_id"] for f in reply["measurements"][0]["faces"]] == [0, 1]
    assert reply["measurements"][1]["faces"] == []
    state = reply["face_state"]
    three = jpeg(faces=3, seed=12)
    status, again, _ = await post(http, emu, "video", form([(three, "image/jpeg")], {"face_state": state}))
    assert status == 200 and "face_state" not in again
    # slots 0 and 1 keep ids 0 and 1 across requests; a new slot gets the next id, 2
    slots = [box.slot for box in detect_faces(inspect_jpeg(three), FaceConfig())][:2]
    assert [f["face_id"] for f in again["measurements"][0]["faces"][:2]] == [s if s < 2 else 2 for s in slots]
    fresh = (await post(http, emu, "video", form([(three, "image/jpeg")])))[1]
    assert sorted(f["face_id"] for f in fresh["measurements"][0]["faces"] if f["face_id"] is not None) == [
        0,
        1,
    ]
    for files, code, status_code in (
        ([(two, "image/jpeg"), (b"GIF89a", "image/gif")], "unsupported_media_type", 415),
        ([(b"\xff\xd8\xff\xe0broken", "image/jpeg")], "image_decode_failed", 400),
        ([(bytes(2_000_001), "image/jpeg")], "image_too_large", 413),
    ):
        status, reply, _ = await post(http, emu, "video", form(files))
        assert (status, reply["code"]) == (status_code, code)
    status, reply, _ = await post(http, emu, "video", form([(two, "image/jpeg")], {"face_state": "bogus"}))
    assert (status, reply["code"]) == (400, "config_invalid")


async def test_runs_list_filters_pages_and_events(emu: Emulator, http: aiohttp.ClientSession) -> None:
    url = emu.ws_base_url + "/v1/expression/audio/realtime"
    async with connect(url, additional_headers=HEADERS) as ws:
        live_id = orjson.loads(await ws.recv())["session_id"]
        await ws.send(b"")
        await ws.send(b"\x00")
        await ws.recv()
        await ws.recv()
        uploads = []
        for _ in range(3):
            uploads.append(
                (await post(http, emu, "audio", form([(tone(200), "application/octet-stream")])))[1]["run_id"]
            )

        async def get(path: str, headers: dict[str, str] = HEADERS) -> tuple[int, Any]:
            async with http.get(emu.http_url + "/v1/expression/run" + path, headers=headers) as response:
                return response.status, await response.json()

        status, page = await get("")
        assert status == 200 and [r["run_id"] for r in page["runs"]] == [*reversed(uploads), live_id]
        assert "next_cursor" not in page
        assert page["runs"][-1]["status"] == "live" and page["runs"][-1]["ended_at"] is None
        status, first = await get("?page_size=2")
        assert [r["run_id"] for r in first["runs"]] == [uploads[2], uploads[1]]
        status, second = await get(f"?page_size=2&cursor={first['next_cursor']}")
        assert [r["run_id"] for r in second["runs"]] == [uploads[0], live_id] and "next_cursor" not in second
        assert [r["run_id"] for r in (await get("?mode=realtime"))[1]["runs"]] == [live_id]
        assert [r["run_id"] for r in (await get("?status=live&endpoint=audio"))[1]["runs"]] == [live_id]
        assert (await get("?endpoint=video"))[1]["runs"] == []
        assert len((await get(f"?user_id={page['runs'][0]['user_id']}"))[1]["runs"]) == 4
        assert (await get("?user_id=user_0"))[1]["runs"] == []
        assert (await get("?started_after=2100-01-01T00:00:00Z"))[1]["runs"] == []
        assert len((await get("?started_before=2100-01-01T00:00:00Z"))[1]["runs"]) == 4
        assert (await get("?status=nope"))[1]["code"] == "invalid_request"
        assert (await get("?cursor=zzz"))[0] == 400
        assert (await get("", {"X-Hume-Api-Key": "other"}))[0] == 401
        status, detail = await get(f"/{live_id}")
        assert status == 200 and detail["config"]["schema"] == "v4" and detail["close_code"] is None
        status, events = await get(f"/{live_id}/events")
        assert status == 200
        assert [e["kind"] for e in events["events"]] == ["invalid_audio_frame", "invalid_audio_frame"]
        assert (events["at_cap"], events["capped_kinds"], events["gaps"]) == (False, [], False)
        status, one = await get(f"/{live_id}/events?page_size=1")
        assert [e["seq"] for e in one["events"]] == [1]
        assert [
            e["seq"] for e in (await get(f"/{live_id}/events?cursor={one['next_cursor']}"))[1]["events"]
        ] == [2]
        assert (await get("/no-such-run"))[1]["code"] == "not_found"
        await ws.send('{"type": "session.close"}')
    await emu.wait_until(
        lambda: emu.runs.get(live_id) is not None and emu.runs.get(live_id).status == "ended"
    )  # type: ignore[union-attr]
    detail = (await get(f"/{live_id}"))[1]
    assert (detail["status"], detail["close_code"], detail["close_reason"]) == (
        "ended",
        1000,
        "client_request",
    )
    assert (detail["bytes_received"], detail["metered_seconds"]) == (0, 0.0)
