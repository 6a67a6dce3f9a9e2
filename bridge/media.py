"""The bridge's own look at media bytes: what they are, how long or how large, and whether they are whole.

Pure functions, no I/O and no clock, on the hot path of every record. Everything here reads headers only:
RIFF chunk headers, PNG chunk lengths, JPEG marker segments, the first bytes of a container. Pixels and
audio samples are never decoded; containers the bridge does not parse itself go to mutagen, which also reads
headers. Whatever cannot be told cheaply is left to Hume (``duration_ms=None``).

Every rejection is a :class:`~bridge.errors.MediaError` with a :class:`~bridge.errors.Code` and a message
for the operator that says what is wrong and where (a byte offset, a declared against an actual size), and
never quotes payload bytes. Any other exception escaping from here is a bug.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any, NamedTuple

import orjson
from mutagen.aac import AAC
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggtheora import OggTheora
from mutagen.oggvorbis import OggVorbis

from bridge.errors import Code, MediaError

# An upstream API's own limits live with its adapter (v0: bridge/upstream/v0/limits.py).
FACEMESH_LANDMARKS = 478

FACEMESH_CONTENT_TYPE = "application/vnd.hume.facemesh+json"
ENVELOPE_CONTENT_TYPE = "application/vnd.hume.stream+json"


class MediaKind(StrEnum):
    """What a record carries, which decides the models it may use and the checks it gets."""

    AUDIO = "audio"
    VIDEO = "video"
    IMAGE = "image"
    TEXT = "text"
    FACEMESH = "facemesh"
    ENVELOPE = "envelope"  # a complete Hume v0 request object, forwarded as given


# --------------------------------------------------------------------------------------------------------
# Content types


def _essence(content_type: str) -> str:
    """``"Audio/WAV; rate=16000"`` -> ``"audio/wav"``."""
    return content_type.split(";", 1)[0].strip().lower()


_EXACT_KINDS = {
    "text/plain": MediaKind.TEXT,
    FACEMESH_CONTENT_TYPE: MediaKind.FACEMESH,
    ENVELOPE_CONTENT_TYPE: MediaKind.ENVELOPE,
}
_TOP_LEVEL_KINDS = {"audio": MediaKind.AUDIO, "video": MediaKind.VIDEO, "image": MediaKind.IMAGE}


def kind_of(content_type: str) -> MediaKind | None:
    """The media kind of a ``content-type`` header value, or None if the bridge does not handle it.

    Case-insensitive; parameters such as ``;charset=utf-8`` are ignored.
    """
    essence = _essence(content_type)
    top, slash, sub = essence.partition("/")
    if not slash or not top or not sub:
        return None
    exact = _EXACT_KINDS.get(essence)
    if exact is not None:
        return exact
    return _TOP_LEVEL_KINDS.get(top)


# ISO-BMFF major brands that mean audio only, or a still image, rather than a movie.
_M4A_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"})


def _mpeg_audio_type(data: bytes) -> str | None:
    """``audio/mpeg`` or ``audio/aac`` if ``data`` opens with a plausible MPEG audio or ADTS frame header."""
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return None
    b1, b2 = data[1], data[2]
    if (b1 >> 1) & 0b11 == 0:  # layer 00 is reserved in MPEG audio and used by AAC's ADTS
        if b1 & 0xF6 == 0xF0 and (b2 >> 2) & 0x0F < 13:
            return "audio/aac"
        return None
    version = (b1 >> 3) & 0b11
    bitrate_index = b2 >> 4
    sample_rate_index = (b2 >> 2) & 0b11
    if version == 0b01 or bitrate_index in (0, 0x0F) or sample_rate_index == 0b11:
        return None
    return "audio/mpeg"


# The formats :func:`sniff` recognises and the bridge reads, as UNSUPPORTED_MEDIA lists them (AVIF and HEIC
# are recognised only to be named in their rejection).
SNIFFED_FORMATS = (
    "WAV",
    "MP3",
    "AAC",
    "FLAC",
    "Ogg",
    "AIFF",
    "MP4",
    "M4A",
    "WebM",
    "Matroska",
    "PNG",
    "JPEG",
    "GIF",
    "WebP",
    "UTF-8 text",
)


def sniff(data: bytes) -> str | None:
    """The content type the bytes announce, for records without a ``content-type`` header.

    Recognises the containers by their leading bytes (RIFF/WAVE, ID3 or an MPEG frame, ISO-BMFF ``ftyp``,
    EBML, PNG, JPEG, GIF, RIFF/WEBP, FLAC, Ogg, AIFF); anything else that is valid UTF-8 without NUL bytes
    is ``text/plain``; otherwise None. Sniffing cannot tell an audio-only MP4 or WebM from a movie unless
    the brand says so (M4A): producers of such audio should set the header.
    """
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:3] == b"ID3":
        return "audio/mpeg"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _M4A_BRANDS:
            return "audio/mp4"
        if brand in _AVIF_BRANDS:
            return "image/avif"
        if brand in _HEIC_BRANDS:
            return "image/heic"
        return "video/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        # The EBML header (a few dozen bytes) names the DocType: "webm" or "matroska".
        return "video/x-matroska" if b"matroska" in data[:64] else "video/webm"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[:4] == b"OggS":
        return "video/ogg" if b"\x80theora" in data[:64] else "audio/ogg"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio/aiff"
    mpeg = _mpeg_audio_type(data)
    if mpeg is not None:
        return mpeg
    if not data or b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain"


# --------------------------------------------------------------------------------------------------------
# Audio


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What the bridge knows about an audio (or audio-bearing) payload; None where it cannot tell."""

    container: str
    duration_ms: float | None
    sample_rate: int | None
    channels: int | None


_WAV_TYPES = frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"})
# A data chunk size of 0xFFFFFFFF is what streaming writers put when the length was unknown: to end of file.
_WAV_SIZE_UNKNOWN = 0xFFFFFFFF


class _Wav(NamedTuple):
    fmt_body: bytes
    format_tag: int
    channels: int
    sample_rate: int
    byte_rate: int
    block_align: int
    data_start: int
    data_len: int

    @property
    def duration_ms(self) -> float:
        return self.data_len * 1000 / self.byte_rate


def _parse_wav(data: bytes) -> _Wav:
    """Walk the RIFF chunks up to ``fmt `` and ``data``; reject anything truncated or incomplete."""
    if len(data) < 12:
        raise MediaError(
            Code.MALFORMED_MEDIA, f"WAV header truncated: the RIFF header needs 12 bytes, {len(data)} present"
        )
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise MediaError(
            Code.MALFORMED_MEDIA, "not a WAV file: the bytes do not start with a RIFF/WAVE header"
        )
    fmt: bytes | None = None
    data_start = data_len = -1
    pos = 12
    while fmt is None or data_start < 0:
        left = len(data) - pos
        if left <= 0:
            missing = "fmt" if fmt is None else "data"
            raise MediaError(
                Code.MALFORMED_MEDIA, f"WAV has no {missing} chunk (file ends at byte {len(data)})"
            )
        if left < 8:
            raise MediaError(
                Code.MALFORMED_MEDIA,
                f"WAV chunk header at byte {pos} truncated: 8 bytes needed, {left} present",
            )
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        follow = len(data) - body
        if chunk_id == b"data":
            if size == _WAV_SIZE_UNKNOWN:
                size = follow
            if size > follow:
                raise MediaError(
                    Code.MALFORMED_MEDIA,
                    f"WAV data chunk claims {size} bytes but only {follow} follow (truncated)",
                )
            if data_start < 0:
                data_start, data_len = body, size
        elif size > follow:
            what = "fmt chunk" if chunk_id == b"fmt " else f"chunk at byte {pos}"
            raise MediaError(
                Code.MALFORMED_MEDIA, f"WAV {what} claims {size} bytes but only {follow} follow (truncated)"
            )
        elif chunk_id == b"fmt " and fmt is None:
            if size < 16:
                raise MediaError(
                    Code.MALFORMED_MEDIA, f"WAV fmt chunk is {size} bytes, at least 16 are needed"
                )
            fmt = data[body : body + size]
        pos = body + size + (size & 1)  # chunks are padded to an even length
    format_tag, channels, sample_rate, byte_rate, block_align = struct.unpack_from("<HHIIH", fmt)
    for name, value in (
        ("channel count", channels),
        ("sample rate", sample_rate),
        ("byte rate", byte_rate),
        ("block align", block_align),
    ):
        if value == 0:
            raise MediaError(Code.MALFORMED_MEDIA, f"WAV fmt chunk declares a {name} of 0")
    return _Wav(fmt, format_tag, channels, sample_rate, byte_rate, block_align, data_start, data_len)


# Sniffed content type -> (container name, the mutagen file types that may read it, tried in order).
_MUTAGEN_READERS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "audio/mpeg": ("mp3", (MP3,)),
    "audio/aac": ("aac", (AAC,)),
    "audio/mp4": ("mp4", (MP4,)),
    "video/mp4": ("mp4", (MP4,)),
    "audio/flac": ("flac", (FLAC,)),
    "audio/aiff": ("aiff", (AIFF,)),
    "audio/ogg": ("ogg", (OggVorbis, OggOpus, OggFLAC, OggSpeex)),
    "video/ogg": ("ogg", (OggTheora,)),
}
# Containers mutagen does not read: recognised, but their duration is Hume's to find out.
_UNREAD_CONTAINERS = {"video/webm": "webm", "video/x-matroska": "matroska"}


def _positive_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _from_mutagen(info: object, container: str) -> AudioInfo:
    length = getattr(info, "length", None)
    duration_ms = float(length) * 1000 if isinstance(length, int | float) and length > 0 else None
    return AudioInfo(
        container,
        duration_ms,
        _positive_int(getattr(info, "sample_rate", None)),
        _positive_int(getattr(info, "channels", None)),
    )


def _read_with_mutagen(data: bytes, readers: tuple[Any, ...]) -> object | None:
    """The mutagen ``info`` of the first reader that accepts the bytes, or None."""
    for reader in readers:
        try:
            parsed = reader(io.BytesIO(data))
        except Exception:  # mutagen raises its own errors and, on corrupt input, struct/index errors
            continue
        info: object | None = getattr(parsed, "info", None)
        if info is not None:
            return info
    return None


def inspect_audio(data: bytes, content_type: str | None = None) -> AudioInfo:
    """Container, duration, sample rate and channels of an audio payload, from its headers only.

    The bytes decide the container when they are recognisable, the ``content_type`` otherwise. WAV is read
    by walking its RIFF chunks: duration = data bytes / byte rate. Other containers go to mutagen; if it
    cannot tell a duration, ``duration_ms`` is None and Hume decides. Bytes that claim a container (by
    their leading bytes, or WAV by ``content_type``) but cannot be parsed as one are MALFORMED_MEDIA.
    """
    sniffed = sniff(data)
    declared = _essence(content_type) if content_type else None
    if sniffed == "audio/wav":
        wav = _parse_wav(data)
        if wav.data_len < wav.block_align:
            raise MediaError(
                Code.EMPTY_MEDIA, f"WAV data chunk holds {wav.data_len} bytes: not one sample frame of audio"
            )
        return AudioInfo("wav", wav.duration_ms, wav.sample_rate, wav.channels)
    if sniffed in _MUTAGEN_READERS:
        container, readers = _MUTAGEN_READERS[sniffed]
        info = _read_with_mutagen(data, readers)
        if info is None:
            raise MediaError(
                Code.MALFORMED_MEDIA,
                f"the bytes start like {container.upper()} ({sniffed}) but its headers cannot be parsed",
            )
        return _from_mutagen(info, container)
    if sniffed in _UNREAD_CONTAINERS:
        return AudioInfo(_UNREAD_CONTAINERS[sniffed], None, None, None)
    if sniffed is not None and sniffed.startswith("image/"):
        said = f"content-type {declared}" if declared else "audio expected"
        raise MediaError(Code.MALFORMED_MEDIA, f"{said} but the bytes are an image ({sniffed})")
    if declared in _WAV_TYPES:
        if len(data) < 12:
            _parse_wav(data)  # raises: the RIFF header is truncated
        raise MediaError(
            Code.MALFORMED_MEDIA,
            f"content-type {declared} but the bytes do not start with a RIFF/WAVE header",
        )
    container = declared.partition("/")[2] if declared else "unknown"
    return AudioInfo(container or "unknown", None, None, None)


def _wav_bytes(fmt_body: bytes, frames: bytes) -> bytes:
    """A complete, minimal WAV file: RIFF header, the given fmt chunk body, one data chunk."""
    fmt_pad = b"\x00" if len(fmt_body) & 1 else b""
    data_pad = b"\x00" if len(frames) & 1 else b""
    body = b"".join(
        (
            b"WAVE",
            b"fmt ",
            struct.pack("<I", len(fmt_body)),
            fmt_body,
            fmt_pad,
            b"data",
            struct.pack("<I", len(frames)),
            frames,
            data_pad,
        )
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def split_wav(data: bytes, max_chunk_ms: float) -> list[bytes]:
    """Cut a WAV into complete WAV files of whole sample frames, each at most ``max_chunk_ms`` long.

    Every chunk keeps the original fmt chunk (same encoding, rate and channels); other chunks (LIST, fact,
    cue) are not carried over. A WAV that already fits is returned as it is; one without a single whole
    frame gives no chunks; a trailing partial frame is dropped. Only formats whose bytes map linearly to
    frames (PCM, float, A-law, mu-law: byte rate = sample rate x block align) can be cut; a longer
    compressed WAV is UNSUPPORTED_MEDIA. ``max_chunk_ms`` must cover at least one frame (else ValueError).
    """
    if not max_chunk_ms > 0:
        raise ValueError(f"max_chunk_ms must be positive, got {max_chunk_ms}")
    wav = _parse_wav(data)
    total_frames = wav.data_len // wav.block_align
    if total_frames == 0:
        return []
    if wav.duration_ms <= max_chunk_ms:
        return [data]
    if wav.byte_rate != wav.sample_rate * wav.block_align:
        raise MediaError(
            Code.UNSUPPORTED_MEDIA,
            f"cannot split WAV format 0x{wav.format_tag:04x}: its byte rate ({wav.byte_rate}) is not sample "
            f"rate x block align ({wav.sample_rate} x {wav.block_align}), so it is not cut at sample frames",
        )
    frames_per_chunk = int(Fraction(max_chunk_ms) * wav.sample_rate / 1000)
    if frames_per_chunk == 0:
        raise ValueError(f"max_chunk_ms={max_chunk_ms} is shorter than one frame at {wav.sample_rate} Hz")
    step = frames_per_chunk * wav.block_align
    end = wav.data_start + total_frames * wav.block_align
    return [
        _wav_bytes(wav.fmt_body, data[start : min(start + step, end)])
        for start in range(wav.data_start, end, step)
    ]


# --------------------------------------------------------------------------------------------------------
# Images


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """Format (``png``, ``jpeg``, ``gif``, ``webp``) and size in pixels of an image payload."""

    format: str
    width: int
    height: int


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not frames.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length


def _malformed(message: str) -> MediaError:
    return MediaError(Code.MALFORMED_MEDIA, message)


def _sized(fmt: str, width: int, height: int) -> ImageInfo:
    if width == 0 or height == 0:
        raise _malformed(f"{fmt.upper()} declares a size of {width} x {height} px")
    return ImageInfo(fmt, width, height)


def _inspect_png(data: bytes) -> ImageInfo:
    if len(data) < 33:
        raise _malformed(f"PNG truncated: the signature and IHDR chunk need 33 bytes, {len(data)} present")
    if data[12:16] != b"IHDR":
        raise _malformed("PNG does not start with an IHDR chunk")
    width, height = struct.unpack_from(">II", data, 16)
    # Walk the chunk lengths (not their contents) to catch a file cut short.
    pos = 8
    while True:
        left = len(data) - pos
        if left < 12:
            raise _malformed(f"PNG ends at byte {len(data)} without an IEND chunk (truncated)")
        (length,) = struct.unpack_from(">I", data, pos)
        follow = left - 12
        if length > follow:
            raise _malformed(
                f"PNG chunk at byte {pos} claims {length} bytes but only {follow} follow (truncated)"
            )
        if data[pos + 4 : pos + 8] == b"IEND":
            break
        pos += 12 + length
    return _sized("png", width, height)


def _inspect_jpeg(data: bytes) -> ImageInfo:
    pos = 2
    while True:
        if pos >= len(data):
            raise _malformed(f"JPEG ends at byte {len(data)} before a SOF frame header (truncated)")
        if data[pos] != 0xFF:
            raise _malformed(f"JPEG has no marker at byte {pos} where one is expected (corrupt segment)")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes may pad before a marker
            pos += 1
        if pos >= len(data):
            raise _malformed(f"JPEG ends at byte {len(data)} before a SOF frame header (truncated)")
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):
            raise _malformed(f"JPEG has no SOF frame header before the image data at byte {pos - 2}")
        if len(data) - pos < 2:
            raise _malformed(f"JPEG segment length at byte {pos} truncated")
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            raise _malformed(f"JPEG segment at byte {pos - 2} declares an impossible length of {length}")
        follow = len(data) - pos
        if length > follow:
            raise _malformed(
                f"JPEG segment at byte {pos - 2} claims {length} bytes but only {follow} follow (truncated)"
            )
        if marker in _JPEG_SOF:
            if length < 8:
                raise _malformed(
                    f"JPEG SOF segment at byte {pos - 2} is {length} bytes, at least 8 are needed"
                )
            height, width = struct.unpack_from(">HH", data, pos + 3)
            return _sized("jpeg", width, height)
        pos += length


def _inspect_gif(data: bytes) -> ImageInfo:
    if len(data) < 10:
        raise _malformed(f"GIF truncated: the logical screen descriptor needs 10 bytes, {len(data)} present")
    width, height = struct.unpack_from("<HH", data, 6)
    return _sized("gif", width, height)


def _inspect_webp(data: bytes) -> ImageInfo:
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size + 8 > len(data):
        raise _malformed(
            f"WebP RIFF claims {riff_size + 8} bytes but only {len(data)} are present (truncated)"
        )
    chunk = data[12:16]
    needed = 25 if chunk == b"VP8L" else 30
    if len(data) < needed:
        raise _malformed(f"WebP truncated: the image header needs {needed} bytes, {len(data)} present")
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise _malformed("WebP VP8 frame lacks its key-frame start code")
        width, height = struct.unpack_from("<HH", data, 26)
        return _sized("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise _malformed("WebP VP8L chunk lacks its signature byte")
        (bits,) = struct.unpack_from("<I", data, 21)
        return _sized("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return _sized("webp", width, height)
    raise _malformed("WebP has no VP8, VP8L or VP8X chunk where the image header belongs")


def inspect_image(data: bytes) -> ImageInfo:
    """Format and pixel size of a PNG, JPEG, GIF or WebP image from its headers (no pixel decoding).

    Corrupt or truncated headers are MALFORMED_MEDIA (a PNG is also checked to be complete up to IEND by
    its chunk lengths); bytes that are not one of these formats are UNSUPPORTED_MEDIA.
    """
    sniffed = sniff(data)
    if sniffed == "image/png":
        return _inspect_png(data)
    if sniffed == "image/jpeg":
        return _inspect_jpeg(data)
    if sniffed == "image/gif":
        return _inspect_gif(data)
    if sniffed == "image/webp":
        return _inspect_webp(data)
    if data and len(data) < len(_PNG_SIGNATURE) and _PNG_SIGNATURE.startswith(data):
        raise _malformed(f"PNG truncated: the signature and IHDR chunk need 33 bytes, {len(data)} present")
    what = f"{sniffed} is not an image format the bridge reads" if sniffed else "the bytes are not an image"
    raise MediaError(Code.UNSUPPORTED_MEDIA, f"{what}: expected PNG, JPEG, GIF or WebP")


# --------------------------------------------------------------------------------------------------------
# Text and facemesh


def decode_text(data: bytes) -> str:
    """The text of a ``text/plain`` payload: strict UTF-8, a leading BOM removed.

    Invalid UTF-8 is INVALID_TEXT with the byte position of the first bad byte; so is text that is empty or
    only whitespace (nothing for the language model to read).
    """
    bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MediaError(
            Code.INVALID_TEXT, f"text is not valid UTF-8: {exc.reason} at byte {exc.start + bom}"
        ) from None
    if not text:
        raise MediaError(Code.INVALID_TEXT, "text is empty")
    if not text.strip():
        raise MediaError(Code.INVALID_TEXT, f"text is only whitespace ({len(text)} characters)")
    return text


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_facemesh(data: bytes, max_faces: int | None = None) -> int:
    """Check a facemesh payload and return its face count.

    The payload is a JSON list of faces, each a list of 478 landmarks ``[x, y, z]`` of numbers. Bad JSON,
    any other shape, or no faces at all are INVALID_FACEMESH; more than ``max_faces`` faces is
    FACEMESH_TOO_LARGE.
    """
    try:
        faces: Any = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MediaError(
            Code.INVALID_FACEMESH, f"facemesh is not valid JSON: {exc.msg} at char {exc.pos}"
        ) from None
    if not isinstance(faces, list):
        raise MediaError(
            Code.INVALID_FACEMESH, f"facemesh must be a JSON list of faces, got {_json_type(faces)}"
        )
    if not faces:
        raise MediaError(Code.INVALID_FACEMESH, "facemesh is an empty list: no faces")
    if max_faces is not None and len(faces) > max_faces:
        raise MediaError(
            Code.FACEMESH_TOO_LARGE,
            f"facemesh has {len(faces)} faces, at most {max_faces} are accepted per payload",
        )
    for i, face in enumerate(faces):
        if not isinstance(face, list):
            raise MediaError(
                Code.INVALID_FACEMESH,
                f"facemesh face {i} must be a list of landmarks, got {_json_type(face)}",
            )
        if len(face) != FACEMESH_LANDMARKS:
            raise MediaError(
                Code.INVALID_FACEMESH,
                f"facemesh face {i} has {len(face)} landmarks, expected {FACEMESH_LANDMARKS}",
            )
        for j, point in enumerate(face):
            if not (isinstance(point, list) and len(point) == 3 and all(_is_number(c) for c in point)):
                raise MediaError(
                    Code.INVALID_FACEMESH,
                    f"facemesh face {i} landmark {j} is not a list of 3 numbers [x, y, z]",
                )
    return len(faces)
