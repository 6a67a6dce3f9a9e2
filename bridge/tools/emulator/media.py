"""Media inspection: what a payload's bytes really are, sniffed from the bytes alone.

Nothing a client claims (file names, content types, ``raw_text`` aside) decides the format; the first bytes
do, as they do at Hume:

==========================  =========  ===================================================================
magic                       kind       measured
==========================  =========  ===================================================================
``RIFF....WAVE``            audio      duration from the ``fmt `` and ``data`` chunks; RMS level of samples
``ID3`` / MPEG frame sync   audio      duration with mutagen (MP3, ADTS AAC)
``fLaC``, ``OggS``          audio      duration with mutagen
``....ftyp``                audio or   duration from ``mvhd``; ``vide`` / ``soun`` handlers say which
                            video      tracks exist (MP4, M4A, MOV)
``1A 45 DF A3``             audio or   duration from ``Info/Duration`` (or the last block's timestamp when
                            video      a live recording has none); track types from ``Tracks`` (WebM, MKV)
PNG / JPEG signature        image      width and height from the IHDR / SOFn header
GIF, WebP, BMP, TIFF        image      width and height with Pillow
anything else               text or    valid UTF-8: a JSON array of faces of ``[x, y, z]`` landmarks is a
                            facemesh   facemesh, everything else is text; otherwise unparseable (E0200)
==========================  =========  ===================================================================

Deterministic detection rules (the emulator's stand-ins for Hume's detectors):

- an image **has a face** unless it is uniform: every band of a 32 x 32 thumbnail spans at most
  :data:`UNIFORM_TOLERANCE` levels;
- audio **has a vocal burst** when the RMS level of its PCM samples is at least :data:`VOICED_RMS` of full
  scale. Only WAV is decoded; compressed audio and video soundtracks always count as voiced.

Images within the size limit are decoded once (as a thumbnail) to apply the face rule; images over the limit
are never decoded. Everything here is pure: bytes in, a :class:`Media` or :class:`Unparseable` out.
"""

from __future__ import annotations

import array
import base64
import binascii
import hashlib
import io
import math
import struct
import sys
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import orjson

MAX_IMAGE_SIDE_PX: Final = 3000
UNIFORM_TOLERANCE: Final = 8
VOICED_RMS: Final = 0.01
FACEMESH_LANDMARKS: Final = 478
_THUMBNAIL_PX: Final = 32
_RMS_SAMPLES: Final = 16384
_FLIP_SIGN: Final = bytes(i ^ 0x80 for i in range(256))


class MediaKind(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"
    IMAGE = "image"
    TEXT = "text"
    FACEMESH = "facemesh"


@dataclass(frozen=True, slots=True)
class Media:
    """What the emulator measured in one payload's ``data``."""

    kind: MediaKind
    format: str  # "wav", "mp3", "mp4", "webm", "png", "jpeg", "text", "facemesh", ...
    digest: bytes  # content hash: the seed of every score computed for this payload
    duration_ms: float | None = None  # audio and video
    has_audio: bool = False  # audio: any samples at all; video: an audio track
    voiced: bool = False  # audio loud enough for a vocal burst
    width: int | None = None  # images
    height: int | None = None
    uniform: bool = False  # a uniform image has no face
    text: str | None = None  # text
    faces: int = 0  # facemesh: number of faces

    @property
    def too_large_image(self) -> bool:
        return (self.width or 0) > MAX_IMAGE_SIDE_PX or (self.height or 0) > MAX_IMAGE_SIDE_PX


@dataclass(frozen=True, slots=True)
class Unparseable:
    """The bytes are not media Hume understands (E0200), or not base64 at all (E0201)."""

    code: str
    message: str


def digest_of(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:16]


def inspect_text(text: str) -> Media:
    """``raw_text`` payloads: the data is the text itself."""
    return Media(MediaKind.TEXT, "text", digest_of(text.encode("utf-8", "surrogatepass")), text=text)


def inspect_bytes(data: bytes, digest: bytes | None = None) -> Media | Unparseable:
    """Sniff and measure decoded media bytes."""
    digest = digest_of(data) if digest is None else digest
    try:
        return _sniff(data, digest)
    except (ValueError, IndexError, struct.error, OverflowError) as exc:
        return Unparseable("E0200", f"Media could not be parsed into a known file format: {exc}")


def decode_data(data: str) -> bytes | Unparseable:
    """Strict base64 (standard alphabet, padding required, no whitespace), as a ``data`` field must be."""
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return Unparseable("E0201", "Media could not be decoded as a base64 encoded string.")


class MediaCache:
    """A bounded LRU of inspections, so a repeated payload costs one string hash and a lookup.

    Keyed by the ``data`` string's length and 64-bit SipHash (Python's ``hash``), which is computed anyway
    and several times cheaper than a cryptographic hash of a large payload; the SHA-256 ``digest`` that
    seeds the scores is computed on a miss only. Inspection is a pure function of the string."""

    def __init__(self, maxsize: int = 2048) -> None:
        self._maxsize = maxsize
        self._entries: OrderedDict[tuple[bool, int, int], Media | Unparseable] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def inspect(self, data: str, *, raw_text: bool) -> Media | Unparseable:
        key = (raw_text, len(data), hash(data))
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        digest = digest_of(data.encode("utf-8", "surrogatepass"))
        result: Media | Unparseable
        if raw_text:
            result = Media(MediaKind.TEXT, "text", digest, text=data)
        else:
            raw = decode_data(data)
            result = raw if isinstance(raw, Unparseable) else inspect_bytes(raw, digest)
        self._entries[key] = result
        if len(self._entries) > self._maxsize:
            self._entries.popitem(last=False)
        return result


# --- sniffing -------------------------------------------------------------------------------------

_PILLOW_MAGIC: Final = (b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def _sniff(data: bytes, digest: bytes) -> Media | Unparseable:
    head = data[:16]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _wav(data, digest)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _pillow_image(data, digest, "webp")
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(data, digest)
    if head[:3] == b"\xff\xd8\xff":
        return _jpeg(data, digest)
    if head[4:8] == b"ftyp":
        return _mp4(data, digest)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _matroska(data, digest)
    if head[:3] == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return _mutagen_audio(data, digest, "aac" if head[1:2] and head[1] & 0x06 == 0 else "mp3")
    if head[:4] == b"fLaC":
        return _mutagen_audio(data, digest, "flac")
    if head[:4] == b"OggS":
        return _mutagen_audio(data, digest, "ogg")
    if head.startswith(_PILLOW_MAGIC):
        return _pillow_image(data, digest, "image")
    return _text_or_facemesh(data, digest)


def _unparseable(what: str) -> Unparseable:
    return Unparseable("E0200", f"Media could not be parsed into a known file format: {what}.")


# --- audio ----------------------------------------------------------------------------------------


def _wav(data: bytes, digest: bytes) -> Media | Unparseable:
    fmt: tuple[int, int, int, int, int] | None = None  # format tag, channels, rate, block align, bits
    pcm: tuple[int, int] | None = None  # offset and length of the data chunk
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            tag, channels, rate, _byte_rate, align, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == 0xFFFE and size >= 40:  # WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with it
                (tag,) = struct.unpack_from("<H", data, body + 24)
            fmt = (tag, channels, rate, align, bits)
        elif chunk_id == b"data":
            pcm = (body, min(size, len(data) - body))
            break
        pos = body + size + (size & 1)
    if fmt is None or pcm is None:
        return _unparseable("WAV without a fmt and a data chunk")
    tag, _channels, rate, align, bits = fmt
    if rate == 0 or align == 0:
        return _unparseable("WAV with a zero sample rate or block size")
    start, length = pcm
    frames = length // align
    duration_ms = frames * 1000.0 / rate
    samples = data[start : start + frames * align]
    return Media(
        MediaKind.AUDIO,
        "wav",
        digest,
        duration_ms=duration_ms,
        has_audio=frames > 0,
        voiced=frames > 0 and _rms(samples, tag, bits) >= VOICED_RMS,
    )


def _rms(samples: bytes, tag: int, bits: int) -> float:
    """RMS level (0..1 of full scale) of PCM samples, over at most ``_RMS_SAMPLES`` evenly spaced samples.
    Encodings other than integer PCM and IEEE float count as full scale (voiced)."""
    values: array.array[int] | array.array[float]
    scale: float
    if tag == 1 and bits == 8:
        values, scale = array.array("b", samples.translate(_FLIP_SIGN)), 128.0  # unsigned -> signed
    elif tag == 1 and bits == 16:
        values, scale = array.array("h"), 32768.0
        values.frombytes(samples[: len(samples) - len(samples) % 2])
    elif tag == 1 and bits == 24:
        values, scale = array.array("b", samples[2::3]), 128.0  # the most significant byte of each sample
    elif tag == 1 and bits == 32:
        values, scale = array.array("i"), 2147483648.0
        values.frombytes(samples[: len(samples) - len(samples) % 4])
    elif tag == 3 and bits == 32:
        values, scale = array.array("f"), 1.0
        values.frombytes(samples[: len(samples) - len(samples) % 4])
    else:
        return 1.0
    if sys.byteorder == "big" and values.itemsize > 1:  # pragma: no cover - WAV is little-endian
        values.byteswap()
    picked = values[:: _step(len(values))]
    if not picked:
        return 0.0
    return math.sqrt(math.fsum(float(v) * float(v) for v in picked) / len(picked)) / scale


def _step(n: int) -> int:
    return max(1, n // _RMS_SAMPLES)


def _mutagen_audio(data: bytes, digest: bytes, fmt: str) -> Media | Unparseable:
    import mutagen  # imported lazily: only compressed audio needs it

    try:
        found = mutagen.File(io.BytesIO(data))
    except Exception as exc:  # mutagen raises a family of its own errors for broken files
        return _unparseable(f"{fmt}: {exc}")
    if found is None or getattr(found, "info", None) is None:
        return _unparseable(fmt)
    length = float(getattr(found.info, "length", 0.0) or 0.0)
    return Media(
        MediaKind.AUDIO,
        type(found).__name__.lower(),
        digest,
        duration_ms=length * 1000.0,
        has_audio=length > 0,
        voiced=length > 0,
    )


def _mp4_boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of the ISO BMFF boxes between ``start`` and ``end``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise ValueError("MP4 box with an impossible size")
        yield kind, pos + header, min(pos + size, end)
        pos += size


def _mp4(data: bytes, digest: bytes) -> Media | Unparseable:
    duration_ms: float | None = None
    handlers: set[bytes] = set()
    for kind, body, end in _mp4_boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for child, cbody, cend in _mp4_boxes(data, body, end):
            if child == b"mvhd":
                if data[cbody] == 1:
                    timescale, duration = struct.unpack_from(">IQ", data, cbody + 20)
                else:
                    timescale, duration = struct.unpack_from(">II", data, cbody + 12)
                if timescale == 0:
                    return _unparseable("MP4 with a zero timescale")
                duration_ms = duration * 1000.0 / timescale
            elif child == b"trak":
                for mdia, mbody, mend in _mp4_boxes(data, cbody, cend):
                    if mdia != b"mdia":
                        continue
                    for leaf, lbody, _ in _mp4_boxes(data, mbody, mend):
                        if leaf == b"hdlr":
                            handlers.add(data[lbody + 8 : lbody + 12])
    if duration_ms is None:
        return _unparseable("MP4 without a movie header")
    return _container(digest, "mp4", duration_ms, video=b"vide" in handlers, audio=b"soun" in handlers)


def _container(
    digest: bytes, fmt: str, duration_ms: float, *, video: bool, audio: bool
) -> Media | Unparseable:
    if not video and not audio:
        return _unparseable(f"{fmt} without an audio or video track")
    return Media(
        MediaKind.VIDEO if video else MediaKind.AUDIO,
        fmt,
        digest,
        duration_ms=duration_ms,
        has_audio=audio,
        voiced=audio,
    )


# EBML element ids (with their length marker bits, as written in the file)
_EBML, _DOCTYPE = 0x1A45DFA3, 0x4282
_SEGMENT, _INFO, _TIMECODE_SCALE, _DURATION = 0x18538067, 0x1549A966, 0x2AD7B1, 0x4489
_TRACKS, _TRACK_ENTRY, _TRACK_TYPE = 0x1654AE6B, 0xAE, 0x83
_CLUSTER, _CLUSTER_TIMECODE, _SIMPLE_BLOCK, _BLOCK_GROUP, _BLOCK = 0x1F43B675, 0xE7, 0xA3, 0xA0, 0xA1
_EBML_CONTAINERS: Final = frozenset({_SEGMENT, _TRACKS, _TRACK_ENTRY, _CLUSTER, _BLOCK_GROUP, _INFO})


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, position after it, all value bits set) of an EBML variable-length integer."""
    first = data[pos]
    if first == 0:
        raise ValueError("EBML integer longer than 8 bytes")
    length = 8 - first.bit_length() + 1
    value = first if keep_marker else first & (0xFF >> length)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    if pos + length > len(data):
        raise ValueError("truncated EBML integer")
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, pos + length, unknown


def _ebml_elements(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, body start, body end) of the EBML elements between ``start`` and ``end``, descending into the
    containers the emulator needs; an unknown-size element extends to ``end``."""
    pos = start
    while pos < end:
        element, pos, _ = _vint(data, pos, keep_marker=True)
        size, pos, unknown = _vint(data, pos, keep_marker=False)
        body_end = end if unknown else min(pos + size, end)
        yield element, pos, body_end
        if element in _EBML_CONTAINERS:
            yield from _ebml_elements(data, pos, body_end)
        pos = body_end


def _uint(data: bytes, start: int, end: int) -> int:
    return int.from_bytes(data[start:end], "big")


def _matroska(data: bytes, digest: bytes) -> Media | Unparseable:
    scale_ns = 1_000_000
    duration: float | None = None
    tracks: set[int] = set()
    cluster_ms = 0
    last_block = 0
    doctype = b""
    for element, body, end in _ebml_elements(data, 0, len(data)):
        if element == _EBML:
            for child, cbody, cend in _ebml_elements(data, body, end):
                if child == _DOCTYPE:
                    doctype = data[cbody:cend]
        elif element == _TIMECODE_SCALE:
            scale_ns = _uint(data, body, end)
        elif element == _DURATION:
            duration = struct.unpack(">f" if end - body == 4 else ">d", data[body:end])[0]
        elif element == _TRACK_TYPE:
            tracks.add(_uint(data, body, end))
        elif element == _CLUSTER_TIMECODE:
            cluster_ms = _uint(data, body, end)
        elif element in (_SIMPLE_BLOCK, _BLOCK):
            _track, after, _ = _vint(data, body, keep_marker=False)
            (relative,) = struct.unpack_from(">h", data, after)
            last_block = max(last_block, cluster_ms + relative)
    if doctype not in (b"webm", b"matroska"):
        return _unparseable("EBML document that is neither WebM nor Matroska")
    ticks = duration if duration is not None else float(last_block)
    return _container(
        digest,
        "webm" if doctype == b"webm" else "matroska",
        ticks * scale_ns / 1e6,
        video=1 in tracks,
        audio=2 in tracks,
    )


# --- images ---------------------------------------------------------------------------------------


def _png(data: bytes, digest: bytes) -> Media | Unparseable:
    if data[12:16] != b"IHDR":
        return _unparseable("PNG without an IHDR header")
    width, height = struct.unpack_from(">II", data, 16)
    return _image(data, digest, "png", width, height)


_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(data: bytes, digest: bytes) -> Media | Unparseable:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return _unparseable("JPEG with a broken marker sequence")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # stand-alone markers
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF_MARKERS:
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return _image(data, digest, "jpeg", width, height)
        pos += 2 + length
    return _unparseable("JPEG without a frame header")


def _pillow_image(data: bytes, digest: bytes, fmt: str) -> Media | Unparseable:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            name = (im.format or fmt).lower()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        return _unparseable(f"{fmt}: {exc}")
    return _image(data, digest, name, width, height)


def _image(data: bytes, digest: bytes, fmt: str, width: int, height: int) -> Media | Unparseable:
    if width == 0 or height == 0:
        return _unparseable(f"{fmt} of zero size")
    media = Media(MediaKind.IMAGE, fmt, digest, width=width, height=height)
    if media.too_large_image:
        return media  # refused for its size (E0205) without decoding it
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (_THUMBNAIL_PX, _THUMBNAIL_PX))  # JPEG: decode at 1/8 scale when possible
            im.thumbnail((_THUMBNAIL_PX, _THUMBNAIL_PX))
            extrema = im.convert("RGB").getextrema()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return _unparseable(f"{fmt} that cannot be decoded: {exc}")
    uniform = all(high - low <= UNIFORM_TOLERANCE for low, high in extrema)  # type: ignore[misc]
    return Media(MediaKind.IMAGE, fmt, digest, width=width, height=height, uniform=uniform)


# --- text and facemesh ----------------------------------------------------------------------------

_CONTROL: Final = bytes(sorted(set(range(32)) - {9, 10, 11, 12, 13}))


def _text_or_facemesh(data: bytes, digest: bytes) -> Media | Unparseable:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _unparseable("unknown binary data")
    if not data or len(data.translate(None, _CONTROL)) != len(data):
        return _unparseable("unknown binary data")
    stripped = text.lstrip()
    if stripped.startswith("["):
        faces = _facemesh_faces(stripped)
        if faces is not None:
            return (
                faces
                if isinstance(faces, Unparseable)
                else Media(MediaKind.FACEMESH, "facemesh", digest, faces=faces)
            )
    return Media(MediaKind.TEXT, "text", digest, text=text)


def _is_point(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )


def _facemesh_faces(text: str) -> int | Unparseable | None:
    """Number of faces when ``text`` is facemesh JSON (a list of faces, each a list of ``[x, y, z]``), an
    error when it has that structure with the wrong landmark count, ``None`` when it is not facemesh."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(face, list) and face and all(_is_point(p) for p in face) for face in value):
        return None
    for face in value:
        if len(face) != FACEMESH_LANDMARKS:
            return Unparseable(
                "E0200",
                f"Facemesh could not be parsed: each face needs {FACEMESH_LANDMARKS} landmarks of [x, y, z],"
                f" got {len(face)}.",
            )
    return len(value)
