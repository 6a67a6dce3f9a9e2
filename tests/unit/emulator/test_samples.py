"""bridge.tools.samples: the sample media are what they say they are."""

from __future__ import annotations

import base64
import io
import struct

import orjson
import pytest
from PIL import Image

from bridge.tools import samples as S


def test_wav_has_the_asked_duration_rate_and_channels() -> None:
    """A 16-bit PCM WAV header states the format; the data chunk holds duration x rate frames."""
    data = S.wav(1.25, sample_rate=8000, channels=2)
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", data, 20)
    assert (tag, channels, rate, byte_rate, align, bits) == (1, 2, 8000, 32000, 4, 16)
    assert data[36:40] == b"data"
    (size,) = struct.unpack_from("<I", data, 40)
    assert size == 1.25 * 8000 * 4 == len(data) - 44


def test_wav_amplitude_zero_is_silence_and_default_is_loud() -> None:
    """amplitude=0 gives all-zero samples; the default peaks near half of full scale."""
    assert set(S.wav(0.5, amplitude=0.0)[44:]) == {0}
    samples = memoryview(S.wav(0.5)[44:]).cast("h")
    assert 16000 <= max(samples) <= 16384


def test_wav_seed_changes_bytes_deterministically() -> None:
    """Same arguments, same bytes; another seed, other bytes."""
    assert S.wav(0.2, seed=1) == S.wav(0.2, seed=1)
    assert S.wav(0.2, seed=1) != S.wav(0.2, seed=2)


@pytest.mark.parametrize("make", [S.png, S.jpeg])
def test_pictures_have_the_asked_size_and_uniformity(make: object) -> None:
    """png()/jpeg() decode with Pillow to the asked size; uniform ones are one flat colour."""
    assert callable(make)
    with Image.open(io.BytesIO(make(120, 80))) as im:
        assert im.size == (120, 80)
        assert any(high - low > 40 for low, high in im.convert("RGB").getextrema())
    with Image.open(io.BytesIO(make(50, 40, uniform=True))) as im:
        assert im.size == (50, 40)
        assert all(high - low <= 2 for low, high in im.convert("RGB").getextrema())


def test_claiming_headers_state_the_size_in_a_few_bytes() -> None:
    """jpeg_claiming/png_claiming are tiny and carry the claimed size where decoders read it."""
    jpg = S.jpeg_claiming(4000, 3001)
    assert jpg[:2] == b"\xff\xd8" and jpg[-2:] == b"\xff\xd9" and len(jpg) < 64
    sof = jpg.index(b"\xff\xc0")
    assert struct.unpack_from(">HH", jpg, sof + 5) == (3001, 4000)
    png = S.png_claiming(5000, 20)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 64
    assert struct.unpack_from(">II", png, 16) == (5000, 20)
    with Image.open(io.BytesIO(png)) as im:  # a valid header: Pillow reads the size
        assert im.size == (5000, 20)


def test_text_has_the_asked_number_of_words_in_sentences() -> None:
    """text(n) has n words, starts with a capital and ends with sentence punctuation."""
    t = S.text(30, seed=4)
    assert len(t.split()) == 30
    assert t[0].isupper() and t[-1] in ".?!"
    assert S.text(30, seed=4) == t != S.text(30, seed=5)


def test_facemesh_is_faces_of_478_xyz_landmarks() -> None:
    """facemesh(n) is JSON: n faces, each 478 points of three floats."""
    mesh = orjson.loads(S.facemesh(3, seed=1))
    assert len(mesh) == 3
    assert all(len(face) == 478 and all(len(p) == 3 for p in face) for face in mesh)
    assert orjson.loads(S.facemesh(0)) == []


def test_v0_request_is_a_complete_request_object() -> None:
    """v0_request puts data, models and the extra fields into one JSON object."""
    body = orjson.loads(S.v0_request(S.b64(b"abc"), {"face": {}}, payload_id="p", reset_stream=True))
    assert body == {"data": "YWJj", "models": {"face": {}}, "payload_id": "p", "reset_stream": True}
    assert base64.b64decode(body["data"]) == b"abc"


def test_containers_start_with_their_magic() -> None:
    """mp3 starts with an MPEG frame sync, mp4 with ftyp, webm with the EBML magic."""
    assert S.mp3(1.0)[:2] == b"\xff\xfb"
    assert S.mp4(1.0)[4:8] == b"ftyp"
    assert S.webm(1.0)[:4] == b"\x1a\x45\xdf\xa3"
