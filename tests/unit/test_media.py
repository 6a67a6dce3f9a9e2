"""The bridge's media inspection: sniffing, kinds, durations, sizes, and precise rejections of bad bytes."""

from __future__ import annotations

import contextlib
import io
import struct
import wave

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bridge.errors import Code, MediaError
from bridge.media import (
    FACEMESH_LANDMARKS,
    AudioInfo,
    ImageInfo,
    MediaKind,
    check_facemesh,
    decode_text,
    inspect_audio,
    inspect_image,
    kind_of,
    sniff,
    split_wav,
)
from bridge.upstream.v0.limits import AUDIO_LIMIT_MS, FACEMESH_LIMIT_FACES, IMAGE_LIMIT_PX, TEXT_LIMIT_CHARS

# --------------------------------------------------------------------------------------------------------
# Builders: real files made with the stdlib and Pillow, plus hand-made headers for the rarer containers.


def make_wav(seconds: float, rate: int = 16000, channels: int = 1, width: int = 2) -> bytes:
    """A PCM WAV whose samples count up, so that every frame is distinguishable."""
    frames = round(rate * seconds)
    pcm = bytes(i % 251 for i in range(frames * channels * width))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def wav_params_and_frames(data: bytes) -> tuple[tuple[int, int, int], bytes]:
    with wave.open(io.BytesIO(data), "rb") as w:
        return (w.getnchannels(), w.getsampwidth(), w.getframerate()), w.readframes(w.getnframes())


def riff_chunk(chunk_id: bytes, body: bytes, size: int | None = None) -> bytes:
    pad = b"\x00" if len(body) % 2 else b""
    return chunk_id + struct.pack("<I", len(body) if size is None else size) + body + pad


def fmt_body(
    tag: int = 1, channels: int = 1, rate: int = 16000, byte_rate: int = 32000, align: int = 2, bits: int = 16
) -> bytes:
    return struct.pack("<HHIIHH", tag, channels, rate, byte_rate, align, bits)


def riff_wave(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_image(fmt: str, width: int, height: int, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buf, fmt, **options)
    return buf.getvalue()


MP3_FRAME_HEADER = bytes([0xFF, 0xFB, 0x90, 0x00])  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz
MP3_FRAME_BYTES = 144 * 128_000 // 44_100


def make_mp3(frames: int) -> bytes:
    return (MP3_FRAME_HEADER + bytes(MP3_FRAME_BYTES - 4)) * frames


def landmarks(n: int = FACEMESH_LANDMARKS) -> list[list[float]]:
    return [[i / 1000, 0.5, -0.01] for i in range(n)]


def reject(code: Code, func: object, *args: object) -> str:
    """Call ``func(*args)``, assert a MediaError with ``code``, return its message."""
    assert callable(func)
    with pytest.raises(MediaError) as exc:
        func(*args)
    assert exc.value.code == code, exc.value
    return exc.value.message


# --------------------------------------------------------------------------------------------------------
# sniff


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (make_wav(0.1), "audio/wav"),
        (make_image("WEBP", 8, 8), "image/webp"),
        (make_image("PNG", 8, 8), "image/png"),
        (make_image("JPEG", 8, 8), "image/jpeg"),
        (make_image("GIF", 8, 8), "image/gif"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + make_mp3(2), "audio/mpeg"),
        (make_mp3(2), "audio/mpeg"),
        (bytes([0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC]), "audio/aac"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", "video/mp4"),
        (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video/mp4"),
        (b"\x00\x00\x00\x1cftypM4A \x00\x00\x00\x00M4A isommp42", "audio/mp4"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "image/avif"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image/heic"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm\x42\x87\x81\x04", "video/webm"),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska\x42\x87\x81\x04", "video/x-matroska"),
        (b"fLaC\x00\x00\x00\x22" + bytes(34), "audio/flac"),
        (b"OggS\x00\x02" + bytes(22) + b"\x01\x1e\x01vorbis", "audio/ogg"),
        (b"OggS\x00\x02" + bytes(22) + b"\x01\x2a\x80theora", "video/ogg"),
        (b"FORM\x00\x00\x00\x2eAIFFCOMM", "audio/aiff"),
        ("Hello, how are you today? Ça va ✓".encode(), "text/plain"),
        (b"\xef\xbb\xbfwith a byte order mark", "text/plain"),
        (b"{}", "text/plain"),
    ],
)
def test_sniff_recognises_each_format(data: bytes, expected: str) -> None:
    """Every container the bridge knows is told apart by its leading bytes; valid UTF-8 is text."""
    assert sniff(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\x00h\x00i",  # UTF-16
        b"caf\xe9",  # Latin-1
        b"text with a \x00 NUL",
        b"\xff\xff\xff\xff",  # frame sync with a reserved bitrate
        b"\xff\xeb\x90\x00",  # MPEG version "reserved"
        b"RIFF\x00\x00\x00\x00AVI LIST",  # RIFF, but neither WAVE nor WEBP
    ],
)
def test_sniff_returns_none_for_unrecognised_binary(data: bytes) -> None:
    """Bytes that are no known container and not UTF-8 text (or empty) are not guessed at."""
    assert sniff(data) is None


# --------------------------------------------------------------------------------------------------------
# kind_of


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("audio/wav", MediaKind.AUDIO),
        ("Audio/MPEG", MediaKind.AUDIO),
        ("audio/webm;codecs=opus", MediaKind.AUDIO),
        ("video/mp4", MediaKind.VIDEO),
        ("image/png", MediaKind.IMAGE),
        ("IMAGE/JPEG ; q=1", MediaKind.IMAGE),
        ("text/plain", MediaKind.TEXT),
        ("text/plain; charset=utf-8", MediaKind.TEXT),
        ("application/vnd.hume.facemesh+json", MediaKind.FACEMESH),
        ("Application/Vnd.Hume.Stream+JSON; v=0", MediaKind.ENVELOPE),
        ("text/html", None),
        ("application/json", None),
        ("application/octet-stream", None),
        ("audio", None),
        ("audio/", None),
        ("", None),
    ],
)
def test_kind_of_maps_content_types(content_type: str, kind: MediaKind | None) -> None:
    """audio/video/image by top-level type, text and the Hume types exactly; case and parameters ignored."""
    assert kind_of(content_type) == kind


# --------------------------------------------------------------------------------------------------------
# inspect_audio: WAV


@pytest.mark.parametrize(
    ("seconds", "rate", "channels", "width", "expected_ms"),
    [
        (1.0, 16000, 1, 2, 1000.0),
        (4.0, 8000, 1, 1, 4000.0),
        (1.5, 44100, 2, 3, 1500.0),
        (0.25, 48000, 2, 2, 250.0),
        (12.0, 16000, 1, 2, 12000.0),
    ],
)
def test_wav_duration_is_exact(
    seconds: float, rate: int, channels: int, width: int, expected_ms: float
) -> None:
    """A WAV's duration is its data bytes over its byte rate, with its rate and channels."""
    info = inspect_audio(make_wav(seconds, rate, channels, width), "audio/wav")
    assert info == AudioInfo("wav", expected_ms, rate, channels)


def test_wav_chunks_before_and_between_are_skipped() -> None:
    """LIST and odd-sized chunks (with their pad byte) before fmt and data are walked over."""
    data = riff_wave(
        riff_chunk(b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00"),
        riff_chunk(b"junk", b"xyz"),
        riff_chunk(b"fmt ", fmt_body()),
        riff_chunk(b"data", bytes(3200)),
        riff_chunk(b"cue ", bytes(4)),
    )
    assert inspect_audio(data) == AudioInfo("wav", 100.0, 16000, 1)


def test_wav_with_streaming_unknown_length_runs_to_the_end() -> None:
    """A data size of 0xFFFFFFFF (written by streaming encoders) means: to the end of the file."""
    data = riff_wave(riff_chunk(b"fmt ", fmt_body()), riff_chunk(b"data", bytes(6400), size=0xFFFFFFFF))
    assert inspect_audio(data).duration_ms == 200.0


def test_wav_truncated_riff_header() -> None:
    """Fewer than 12 bytes cannot hold a RIFF header."""
    message = reject(Code.MALFORMED_MEDIA, inspect_audio, b"RIFF\x24\x00\x00", "audio/wav")
    assert message == "WAV header truncated: the RIFF header needs 12 bytes, 7 present"


def test_wav_truncated_fmt_chunk() -> None:
    """A header cut inside the fmt chunk says how much is missing."""
    message = reject(Code.MALFORMED_MEDIA, inspect_audio, make_wav(1.0)[:30])
    assert message == "WAV fmt chunk claims 16 bytes but only 10 follow (truncated)"


def test_wav_truncated_chunk_header() -> None:
    """A header cut inside a chunk header names where."""
    message = reject(Code.MALFORMED_MEDIA, inspect_audio, make_wav(1.0)[:40])
    assert message == "WAV chunk header at byte 36 truncated: 8 bytes needed, 4 present"


def test_wav_truncated_data() -> None:
    """A data chunk claiming more bytes than present is truncated, with both figures."""
    data = make_wav(3.0)[: 44 + 1200]
    message = reject(Code.MALFORMED_MEDIA, inspect_audio, data)
    assert message == "WAV data chunk claims 96000 bytes but only 1200 follow (truncated)"


def test_wav_missing_fmt() -> None:
    """A data chunk without a fmt chunk cannot be interpreted."""
    message = reject(Code.MALFORMED_MEDIA, inspect_audio, riff_wave(riff_chunk(b"data", bytes(100))))
    assert message.startswith("WAV has no fmt chunk")


def test_wav_missing_data() -> None:
    """A fmt chunk alone carries no audio."""
    message = reject(Code.MALFORMED_MEDIA, inspect_audio, riff_wave(riff_chunk(b"fmt ", fmt_body())))
    assert message.startswith("WAV has no data chunk")


def test_wav_short_fmt() -> None:
    """A fmt chunk below 16 bytes lacks the fields the duration needs."""
    data = riff_wave(riff_chunk(b"fmt ", fmt_body()[:14]), riff_chunk(b"data", bytes(10)))
    assert (
        reject(Code.MALFORMED_MEDIA, inspect_audio, data)
        == "WAV fmt chunk is 14 bytes, at least 16 are needed"
    )


def test_wav_zero_byte_rate() -> None:
    """A byte rate of 0 makes a duration impossible."""
    data = riff_wave(riff_chunk(b"fmt ", fmt_body(byte_rate=0)), riff_chunk(b"data", bytes(100)))
    assert reject(Code.MALFORMED_MEDIA, inspect_audio, data) == "WAV fmt chunk declares a byte rate of 0"


def test_declared_wav_that_is_not_riff() -> None:
    """content-type audio/wav on bytes without a RIFF/WAVE header is malformed, not guessed at."""
    message = reject(Code.MALFORMED_MEDIA, inspect_audio, b"just some words", "audio/x-wav")
    assert message == "content-type audio/x-wav but the bytes do not start with a RIFF/WAVE header"


def test_audio_that_is_an_image() -> None:
    """An image under an audio content type is called what it is."""
    message = reject(Code.MALFORMED_MEDIA, inspect_audio, make_image("PNG", 4, 4), "audio/mpeg")
    assert message == "content-type audio/mpeg but the bytes are an image (image/png)"


def test_bytes_win_over_the_declared_type() -> None:
    """A WAV labelled audio/mpeg is still measured as the WAV it is."""
    assert inspect_audio(make_wav(0.5), "audio/mpeg").container == "wav"


# --------------------------------------------------------------------------------------------------------
# inspect_audio: other containers


def test_mp3_duration_from_its_frames() -> None:
    """MP3 is measured by mutagen from its frame headers (128 kbit/s: bytes x 8 / bitrate)."""
    data = make_mp3(100)
    info = inspect_audio(data, "audio/mpeg")
    assert info.container == "mp3"
    assert info.sample_rate == 44100
    assert info.duration_ms == pytest.approx(len(data) * 8 / 128_000 * 1000, rel=1e-3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(64), "the bytes start like MP3 (audio/mpeg)"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A isom", "the bytes start like MP4 (audio/mp4)"),
        (b"fLaC" + bytes(8), "the bytes start like FLAC (audio/flac)"),
        (b"OggS" + bytes(40), "the bytes start like OGG (audio/ogg)"),
    ],
)
def test_recognised_container_that_mutagen_cannot_parse(data: bytes, message: str) -> None:
    """Bytes announcing a container whose headers are unreadable are malformed."""
    assert reject(Code.MALFORMED_MEDIA, inspect_audio, data).startswith(message)


def test_webm_duration_is_left_to_hume() -> None:
    """WebM is recognised but not measured: Hume decides."""
    data = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm\x42\x87\x81\x04" + bytes(100)
    assert inspect_audio(data, "audio/webm") == AudioInfo("webm", None, None, None)


def test_unrecognised_bytes_under_a_declared_type_are_left_to_hume() -> None:
    """Bytes the bridge cannot read under another audio type keep that type's name, unmeasured."""
    assert inspect_audio(b"\x01\x02\x03\x80\x81", "audio/AMR") == AudioInfo("amr", None, None, None)
    assert inspect_audio(b"\x01\x02\x03\x80\x81") == AudioInfo("unknown", None, None, None)


# --------------------------------------------------------------------------------------------------------
# split_wav


def test_split_12_seconds_into_three_4_second_wavs() -> None:
    """12 s at 4000 ms gives 3 complete WAVs of 4000 ms with the original format and samples."""
    data = make_wav(12.0, rate=16000)
    chunks = split_wav(data, 4000)
    assert [inspect_audio(c).duration_ms for c in chunks] == [4000.0, 4000.0, 4000.0]
    params, original = wav_params_and_frames(data)
    parts = [wav_params_and_frames(c) for c in chunks]
    assert all(p == params for p, _ in parts)
    assert b"".join(f for _, f in parts) == original


def test_split_leaves_a_shorter_last_chunk() -> None:
    """10 s of stereo 44.1 kHz at 4000 ms gives 4000, 4000, 2000."""
    data = make_wav(10.0, rate=44100, channels=2)
    chunks = split_wav(data, 4000)
    assert [inspect_audio(c).duration_ms for c in chunks] == [4000.0, 4000.0, 2000.0]
    assert b"".join(wav_params_and_frames(c)[1] for c in chunks) == wav_params_and_frames(data)[1]


def test_split_never_exceeds_an_uneven_limit() -> None:
    """A limit that is not a whole number of frames rounds down to whole frames, never over the limit."""
    data = make_wav(2.0, rate=22050, channels=1, width=1)
    chunks = split_wav(data, 333.3)
    durations = [inspect_audio(c).duration_ms for c in chunks]
    assert all(d is not None and d <= 333.3 for d in durations)
    assert b"".join(wav_params_and_frames(c)[1] for c in chunks) == wav_params_and_frames(data)[1]
    # 8-bit mono chunks have an odd byte count: each must still be a valid, padded RIFF file.
    assert all(len(c) % 2 == 0 for c in chunks)


def test_split_returns_a_fitting_wav_unchanged() -> None:
    """A WAV already within the limit is passed through as it is."""
    data = make_wav(3.0)
    assert split_wav(data, AUDIO_LIMIT_MS) == [data]


def test_split_drops_a_trailing_partial_frame() -> None:
    """Only whole sample frames go into chunks."""
    data = riff_wave(riff_chunk(b"fmt ", fmt_body()), riff_chunk(b"data", bytes(range(256)) * 125 + b"\x07"))
    chunks = split_wav(data, 500)
    assert sum(len(wav_params_and_frames(c)[1]) for c in chunks) == 32000


def test_split_of_empty_audio_gives_no_chunks() -> None:
    """A WAV without a single whole frame has nothing to send."""
    assert split_wav(riff_wave(riff_chunk(b"fmt ", fmt_body()), riff_chunk(b"data", b"")), 4000) == []


def test_split_refuses_compressed_wav() -> None:
    """A long WAV whose bytes do not map linearly to frames (ADPCM) cannot be cut."""
    fmt = fmt_body(tag=0x11, channels=1, rate=8000, byte_rate=4055, align=256, bits=4)
    data = riff_wave(riff_chunk(b"fmt ", fmt), riff_chunk(b"data", bytes(4055 * 6)))
    message = reject(Code.UNSUPPORTED_MEDIA, split_wav, data, 4000)
    assert message.startswith("cannot split WAV format 0x0011")


def test_split_rejects_malformed_wav() -> None:
    """Splitting checks the WAV like inspect_audio does."""
    reject(Code.MALFORMED_MEDIA, split_wav, make_wav(6.0)[:1000], 4000)


@pytest.mark.parametrize("max_ms", [0, -1, 0.01])
def test_split_needs_room_for_a_frame(max_ms: float) -> None:
    """A non-positive limit, or one shorter than a frame, is a caller error."""
    with pytest.raises(ValueError, match="max_chunk_ms"):
        split_wav(make_wav(1.0, rate=8000), max_ms)


# --------------------------------------------------------------------------------------------------------
# inspect_image


@pytest.mark.parametrize(
    ("fmt", "name", "options"),
    [
        ("PNG", "png", {}),
        ("JPEG", "jpeg", {}),
        ("JPEG", "jpeg", {"progressive": True}),
        ("JPEG", "jpeg", {"exif": b"Exif\x00\x00" + bytes(200), "icc_profile": bytes(300)}),
        ("GIF", "gif", {}),
        ("WEBP", "webp", {}),
        ("WEBP", "webp", {"lossless": True}),
        ("WEBP", "webp", {"exif": b"Exif\x00\x00" + bytes(20)}),
    ],
)
@pytest.mark.parametrize(("width", "height"), [(1, 1), (640, 480), (3001, 17)])
def test_image_size_from_headers(
    fmt: str, name: str, options: dict[str, object], width: int, height: int
) -> None:
    """Format and exact pixel size come from the headers of PNG, JPEG (any SOFn, after APPn), GIF, WebP."""
    assert inspect_image(make_image(fmt, width, height, **options)) == ImageInfo(name, width, height)


def test_png_truncated_in_ihdr() -> None:
    """A PNG cut before the end of its IHDR chunk is truncated."""
    message = reject(Code.MALFORMED_MEDIA, inspect_image, make_image("PNG", 64, 64)[:20])
    assert message == "PNG truncated: the signature and IHDR chunk need 33 bytes, 20 present"


def test_png_truncated_signature() -> None:
    """A few bytes of the PNG signature alone are a truncated PNG, not an unknown format."""
    assert reject(Code.MALFORMED_MEDIA, inspect_image, b"\x89PNG").startswith("PNG truncated")


def test_png_truncated_in_image_data() -> None:
    """A PNG cut inside a chunk says which chunk and how much is missing."""
    data = make_image("PNG", 64, 64)
    message = reject(Code.MALFORMED_MEDIA, inspect_image, data[:-20])
    assert "claims" in message
    assert message.endswith("(truncated)")


def test_png_without_iend() -> None:
    """A PNG that stops at a chunk boundary before IEND is truncated."""
    data = make_image("PNG", 64, 64)
    assert data.endswith(b"IEND\xaeB`\x82")
    message = reject(Code.MALFORMED_MEDIA, inspect_image, data[:-12])
    assert message == f"PNG ends at byte {len(data) - 12} without an IEND chunk (truncated)"


def test_png_zero_width() -> None:
    """A PNG declaring zero pixels is malformed."""
    data = bytearray(make_image("PNG", 8, 8))
    data[16:20] = b"\x00\x00\x00\x00"
    assert reject(Code.MALFORMED_MEDIA, inspect_image, bytes(data)) == "PNG declares a size of 0 x 8 px"


def test_png_without_ihdr_first() -> None:
    """IHDR must be the first chunk."""
    data = bytearray(make_image("PNG", 8, 8))
    data[12:16] = b"tEXt"
    assert reject(Code.MALFORMED_MEDIA, inspect_image, bytes(data)) == "PNG does not start with an IHDR chunk"


def test_jpeg_without_sof() -> None:
    """A JPEG whose scan starts before any SOF frame header has no size."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sos = b"\xff\xda" + struct.pack(">H", 8) + bytes(6)
    message = reject(Code.MALFORMED_MEDIA, inspect_image, b"\xff\xd8" + app0 + sos + b"\xff\xd9")
    assert message == "JPEG has no SOF frame header before the image data at byte 20"


def test_jpeg_ending_before_sof() -> None:
    """A JPEG cut after its APP segments is truncated before the frame header."""
    data = make_image("JPEG", 32, 32)
    sof = data.index(b"\xff\xc0")
    message = reject(Code.MALFORMED_MEDIA, inspect_image, data[:sof])
    assert message == f"JPEG ends at byte {sof} before a SOF frame header (truncated)"


def test_jpeg_truncated_segment() -> None:
    """A segment claiming more bytes than follow is truncated."""
    data = make_image("JPEG", 32, 32, exif=b"Exif\x00\x00" + bytes(500))
    message = reject(Code.MALFORMED_MEDIA, inspect_image, data[:100])
    assert message.startswith("JPEG segment at byte ")
    assert message.endswith("(truncated)")


def test_jpeg_garbage_between_segments() -> None:
    """A byte that should be a marker and is not means a corrupt segment length."""
    data = b"\xff\xd8\xff\xe0\x00\x04\x00\x00\x12\x34"
    message = reject(Code.MALFORMED_MEDIA, inspect_image, data)
    assert message == "JPEG has no marker at byte 8 where one is expected (corrupt segment)"


def test_gif_truncated() -> None:
    """A GIF needs its logical screen descriptor."""
    message = reject(Code.MALFORMED_MEDIA, inspect_image, b"GIF89a\x10\x00")
    assert message == "GIF truncated: the logical screen descriptor needs 10 bytes, 8 present"


def test_webp_truncated() -> None:
    """A WebP shorter than its RIFF size is truncated."""
    data = make_image("WEBP", 64, 64)
    message = reject(Code.MALFORMED_MEDIA, inspect_image, data[:28])
    assert message == f"WebP RIFF claims {len(data)} bytes but only 28 are present (truncated)"


@pytest.mark.parametrize(
    "data",
    [
        b"hello",
        b"",
        b"BM\x00\x00\x00\x00",
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
        make_wav(0.1),
    ],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    """Bytes that are not PNG, JPEG, GIF or WebP are unsupported media, not malformed."""
    assert reject(Code.UNSUPPORTED_MEDIA, inspect_image, data).endswith("expected PNG, JPEG, GIF or WebP")


# --------------------------------------------------------------------------------------------------------
# decode_text


def test_text_is_decoded() -> None:
    """Strict UTF-8 text comes back as it is."""
    assert decode_text("I’m thrilled — really!\n".encode()) == "I’m thrilled — really!\n"


def test_text_bom_is_stripped() -> None:
    """A UTF-8 byte order mark is not part of the text."""
    assert decode_text(b"\xef\xbb\xbfhello") == "hello"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello \xff world", "text is not valid UTF-8: invalid start byte at byte 6"),
        (b"\xef\xbb\xbfab\xc3(", "text is not valid UTF-8: invalid continuation byte at byte 5"),
        (b"caf" + "é".encode()[:1], "text is not valid UTF-8: unexpected end of data at byte 3"),
        (b"", "text is empty"),
        (b"\xef\xbb\xbf", "text is empty"),
        (b" \n\t\r\n ", "text is only whitespace (6 characters)"),
    ],
)
def test_invalid_text(data: bytes, message: str) -> None:
    """Non-UTF-8 bytes are rejected with the position of the first bad byte; empty text is rejected."""
    assert reject(Code.INVALID_TEXT, decode_text, data) == message


def test_text_limit_is_hume_s() -> None:
    """The per-payload limits are Hume's published ones."""
    assert (AUDIO_LIMIT_MS, IMAGE_LIMIT_PX, TEXT_LIMIT_CHARS, FACEMESH_LIMIT_FACES) == (
        5000,
        3000,
        10_000,
        10,
    )


# --------------------------------------------------------------------------------------------------------
# check_facemesh


@pytest.mark.parametrize("faces", [1, 3, FACEMESH_LIMIT_FACES])
def test_facemesh_face_count(faces: int) -> None:
    """A list of faces of 478 [x, y, z] landmarks is counted."""
    assert check_facemesh(orjson.dumps([landmarks() for _ in range(faces)])) == faces


def test_facemesh_integers_are_numbers() -> None:
    """Integer coordinates are numbers too."""
    assert check_facemesh(orjson.dumps([[[0, 1, 2]] * FACEMESH_LANDMARKS])) == 1


def test_facemesh_too_many_faces() -> None:
    """More than 10 faces is over Hume's limit."""
    data = orjson.dumps([landmarks() for _ in range(FACEMESH_LIMIT_FACES + 1)])
    message = reject(Code.FACEMESH_TOO_LARGE, check_facemesh, data, FACEMESH_LIMIT_FACES)
    assert message == "facemesh has 11 faces, at most 10 are accepted per payload"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([landmarks(), landmarks(477)], "facemesh face 1 has 477 landmarks, expected 478"),
        ([landmarks(479)], "facemesh face 0 has 479 landmarks, expected 478"),
        ({"faces": []}, "facemesh must be a JSON list of faces, got an object"),
        ([], "facemesh is an empty list: no faces"),
        (["face"], "facemesh face 0 must be a list of landmarks, got a string"),
        (
            [[*landmarks(477), [0.1, 0.2]]],
            "facemesh face 0 landmark 477 is not a list of 3 numbers [x, y, z]",
        ),
        (
            [[[True, 0.2, 0.3], *landmarks(477)]],
            "facemesh face 0 landmark 0 is not a list of 3 numbers [x, y, z]",
        ),
        (
            [[*landmarks(400), None, *landmarks(77)]],
            "facemesh face 0 landmark 400 is not a list of 3 numbers [x, y, z]",
        ),
    ],
)
def test_facemesh_wrong_shape(value: object, message: str) -> None:
    """Anything but faces of 478 numeric [x, y, z] landmarks is rejected, naming the face and landmark."""
    assert reject(Code.INVALID_FACEMESH, check_facemesh, orjson.dumps(value)) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[[[0.1, 0.2", "facemesh is not valid JSON: unexpected end of data at char 11"),
        (b"<faces/>", "facemesh is not valid JSON: unexpected character, expected a JSON value at char 0"),
        (b"[1,]", "facemesh is not valid JSON: trailing comma is not allowed at char 2"),
        (b"", "facemesh is not valid JSON: Input is a zero-length, empty document at char 0"),
    ],
)
def test_facemesh_not_json(data: bytes, message: str) -> None:
    """Bad JSON is rejected with the parser's reason and position, never the bytes."""
    assert reject(Code.INVALID_FACEMESH, check_facemesh, data) == message


# --------------------------------------------------------------------------------------------------------
# Property: arbitrary bytes never break inspection

MAGICS = [
    b"",
    b"RIFF\x00\x01\x00\x00WAVE",
    b"RIFF\x00\x01\x00\x00WAVEfmt ",
    b"RIFF\x20\x00\x00\x00WEBPVP8 ",
    b"RIFF\x20\x00\x00\x00WEBPVP8L",
    b"RIFF\x20\x00\x00\x00WEBPVP8X",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xc0",
    b"GIF89a",
    b"ID3",
    MP3_FRAME_HEADER,
    b"\xff\xf1\x50\x80",
    b"\x00\x00\x00\x18ftypM4A ",
    b"\x00\x00\x00\x18ftypisom",
    b"\x1a\x45\xdf\xa3",
    b"fLaC",
    b"OggS",
    b"OggS\x00\x02" + bytes(22) + b"\x01\x2a\x80theora",
    b"FORM\x00\x00\x00\x2eAIFF",
    b"[[[",
]


@settings(max_examples=400, deadline=None)
@given(
    prefix=st.sampled_from(MAGICS),
    rest=st.binary(max_size=300),
    content_type=st.sampled_from([None, "audio/wav", "audio/mpeg", "audio/webm", "video/mp4", "text/plain"]),
)
def test_arbitrary_bytes_raise_only_media_errors(
    prefix: bytes, rest: bytes, content_type: str | None
) -> None:
    """sniff never raises; every inspection raises nothing but MediaError, whatever the bytes."""
    data = prefix + rest
    sniffed = sniff(data)
    assert sniffed is None or kind_of(sniffed) is not None
    for call in (
        lambda: inspect_audio(data, content_type),
        lambda: inspect_image(data),
        lambda: decode_text(data),
        lambda: check_facemesh(data),
        lambda: split_wav(data, 4000),
    ):
        with contextlib.suppress(MediaError):
            call()


VALID_FILES = [
    make_wav(0.3),
    make_wav(0.2, rate=8000, channels=2, width=1),
    make_image("PNG", 20, 10),
    make_image("JPEG", 20, 10, exif=b"Exif\x00\x00" + bytes(30)),
    make_image("GIF", 20, 10),
    make_image("WEBP", 20, 10),
    make_image("WEBP", 20, 10, lossless=True),
    make_mp3(3),
    orjson.dumps([landmarks()]),
]


@settings(max_examples=300, deadline=None)
@given(
    original=st.sampled_from(VALID_FILES),
    cut=st.integers(min_value=0, max_value=4000),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=4000), st.integers(1, 255)), max_size=3),
)
def test_damaged_files_raise_only_media_errors(
    original: bytes, cut: int, flips: list[tuple[int, int]]
) -> None:
    """Real files cut short or with flipped bytes are rejected with MediaError or read, never crash."""
    data = bytearray(original[: len(original) - cut % (len(original) + 1)])
    for pos, xor in flips:
        if data:
            data[pos % len(data)] ^= xor
    damaged = bytes(data)
    sniff(damaged)
    for call in (
        lambda: inspect_audio(damaged, "audio/wav"),
        lambda: inspect_image(damaged),
        lambda: check_facemesh(damaged),
        lambda: split_wav(damaged, 100),
    ):
        with contextlib.suppress(MediaError):
            call()
