"""Media inspection: formats are sniffed from the bytes and measured from their headers."""

from __future__ import annotations

import struct

import pytest

from bridge.tools import samples as S
from bridge.tools.emulator.media import (
    Media,
    MediaCache,
    MediaKind,
    Unparseable,
    decode_data,
    inspect_bytes,
    inspect_text,
)


def media(data: bytes) -> Media:
    found = inspect_bytes(data)
    assert isinstance(found, Media), found
    return found


@pytest.mark.parametrize(
    ("data", "kind", "fmt", "duration_ms", "has_audio"),
    [
        (S.wav(1.5), MediaKind.AUDIO, "wav", 1500.0, True),
        (S.wav(2.0, sample_rate=8000, channels=2), MediaKind.AUDIO, "wav", 2000.0, True),
        (S.wav(0.0), MediaKind.AUDIO, "wav", 0.0, False),
        (S.mp4(3.2), MediaKind.AUDIO, "mp4", 3200.0, True),
        (S.mp4(4.5, video=True), MediaKind.VIDEO, "mp4", 4500.0, True),
        (S.mp4(1.0, video=True, audio=False), MediaKind.VIDEO, "mp4", 1000.0, False),
        (S.webm(2.5), MediaKind.AUDIO, "webm", 2500.0, True),
        (S.webm(2.5, live=True), MediaKind.AUDIO, "webm", 2500.0, True),
        (S.webm(40.0, live=True), MediaKind.AUDIO, "webm", 40000.0, True),
        (S.webm(4.0, video=True), MediaKind.VIDEO, "webm", 4000.0, True),
        (S.webm(4.0, video=True, audio=False), MediaKind.VIDEO, "webm", 4000.0, False),
    ],
)
def test_audio_and_video_durations_come_from_headers(
    data: bytes, kind: MediaKind, fmt: str, duration_ms: float, has_audio: bool
) -> None:
    """WAV, MP4 and WebM (with or without Info/Duration) report their exact duration and tracks."""
    m = media(data)
    assert (m.kind, m.format, m.duration_ms, m.has_audio) == (
        kind,
        fmt,
        pytest.approx(duration_ms),
        has_audio,
    )


def test_mp3_duration_comes_from_mutagen() -> None:
    """An MP3 is measured to within one frame (26 ms)."""
    m = media(S.mp3(2.0))
    assert (m.kind, m.format, m.has_audio) == (MediaKind.AUDIO, "mp3", True)
    assert 2000.0 <= (m.duration_ms or 0) <= 2027.0


def test_wav_loudness_decides_voiced() -> None:
    """Silence is not voiced; the default tone is; the threshold is 1% of full scale RMS."""
    assert media(S.wav(1.0)).voiced
    assert not media(S.wav(1.0, amplitude=0.0)).voiced
    assert not media(S.wav(1.0, amplitude=0.01)).voiced  # RMS 0.0071
    assert media(S.wav(1.0, amplitude=0.02)).voiced  # RMS 0.014


def _wav_with(tag: int, bits: int, pcm: bytes, channels: int = 1) -> bytes:
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, 8000, 8000 * align, align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("tag", "bits", "loud", "quiet"),
    [
        (1, 8, bytes([0x80 + 100, 0x80 - 100]) * 400, bytes([0x80]) * 800),
        (1, 24, b"\x00\x00\x40\x00\x00\xc0" * 400, bytes(2400)),
        (1, 32, struct.pack("<ii", 1 << 30, -(1 << 30)) * 400, bytes(3200)),
        (3, 32, struct.pack("<ff", 0.5, -0.5) * 400, bytes(3200)),
    ],
)
def test_other_pcm_encodings_are_measured(tag: int, bits: int, loud: bytes, quiet: bytes) -> None:
    """8-bit unsigned, 24- and 32-bit integer and 32-bit float PCM: duration and loudness."""
    m = media(_wav_with(tag, bits, loud))
    assert m.voiced and m.duration_ms == pytest.approx(100.0)
    assert not media(_wav_with(tag, bits, quiet)).voiced


def test_undecodable_wav_encodings_count_as_voiced() -> None:
    """A-law (or any encoding the emulator does not decode) is assumed loud."""
    assert media(_wav_with(6, 8, bytes(800))).voiced


@pytest.mark.parametrize(
    ("data", "fmt", "size", "uniform"),
    [
        (S.png(64, 48), "png", (64, 48), False),
        (S.png(64, 48, uniform=True), "png", (64, 48), True),
        (S.jpeg(300, 200), "jpeg", (300, 200), False),
        (S.jpeg(300, 200, uniform=True), "jpeg", (300, 200), True),
        (S.jpeg_claiming(3001, 10), "jpeg", (3001, 10), False),
        (S.png_claiming(10, 9000), "png", (10, 9000), False),
    ],
)
def test_image_sizes_and_uniformity(data: bytes, fmt: str, size: tuple[int, int], uniform: bool) -> None:
    """Sizes come from the PNG/JPEG headers (over-limit images are not decoded); uniform ones have no face."""
    m = media(data)
    assert (m.kind, m.format, (m.width, m.height), m.uniform) == (MediaKind.IMAGE, fmt, size, uniform)


def test_other_pillow_formats_are_images() -> None:
    """GIF (and WebP, BMP, TIFF) are measured with Pillow."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (30, 20), (1, 2, 3)).save(out, "GIF")
    m = media(out.getvalue())
    assert (m.kind, m.format, m.width, m.height, m.uniform) == (MediaKind.IMAGE, "gif", 30, 20, True)


@pytest.mark.parametrize(
    "data",
    [
        S.jpeg_claiming(100, 100),  # within limits but no image data
        S.png_claiming(100, 100),
        S.png(20, 20)[:40],  # truncated
        b"\x89PNG\r\n\x1a\n" + bytes(20),  # no IHDR
        b"RIFF\x10\x00\x00\x00WAVEjunk\x00\x00\x00\x00",  # no fmt, no data
        b"\x00\x01\x02\x03binary",
        b"\xff\xfe\xfd not utf-8",
        b"",
        b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(64),  # an ID3 tag and no audio
        b"\x1a\x45\xdf\xa3\x84\x42\x82\x81x",  # EBML, but neither WebM nor Matroska
    ],
)
def test_unparseable_media_is_e0200(data: bytes) -> None:
    """Broken or unknown bytes are E0200, never an exception."""
    found = inspect_bytes(data)
    assert isinstance(found, Unparseable) and found.code == "E0200", found


def test_text_and_facemesh_are_told_apart_by_structure() -> None:
    """UTF-8 is text unless it is a JSON array of faces of [x, y, z] points."""
    assert media(S.facemesh(2)).kind is MediaKind.FACEMESH
    assert media(S.facemesh(2)).faces == 2
    assert media(b"[]").faces == 0
    assert media(b"[laughs] hello").kind is MediaKind.TEXT
    assert media(b"[[1, 2, 3]]").kind is MediaKind.TEXT  # a face must be a list of points
    assert media("héllo wörld".encode()).text == "héllo wörld"


def test_facemesh_with_wrong_landmark_count_is_e0200() -> None:
    """A face with other than 478 landmarks cannot be parsed."""
    found = inspect_bytes(b"[[[0.1, 0.2, 0.3]]]")
    assert isinstance(found, Unparseable) and found.code == "E0200" and "478" in found.message


def test_base64_is_strict() -> None:
    """Standard alphabet with padding; anything else is E0201."""
    assert decode_data("YWJj") == b"abc"
    for bad in ("YWJ", "YW Jj", "YWJj\n", "***", "YW_j"):
        found = decode_data(bad)
        assert isinstance(found, Unparseable) and found.code == "E0201", bad


def test_cache_inspects_a_payload_once() -> None:
    """The same data string is measured once; raw text and base64 are cached apart."""
    cache = MediaCache(maxsize=2)
    data = S.b64(S.wav(0.5))
    first = cache.inspect(data, raw_text=False)
    assert cache.inspect(data, raw_text=False) is first
    assert (cache.hits, cache.misses) == (1, 1)
    assert isinstance(cache.inspect(data, raw_text=True), Media)
    assert cache.misses == 2
    cache.inspect("a", raw_text=True)
    cache.inspect("b", raw_text=True)  # evicts the least recently used
    cache.inspect(data, raw_text=False)
    assert cache.misses == 5


def test_digest_depends_on_content_only() -> None:
    """The digest seeds every score: same text, same digest."""
    assert inspect_text("abc").digest == inspect_text("abc").digest != inspect_text("abd").digest
