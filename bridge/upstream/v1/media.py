"""Media in the form Hume v1 takes: 16 kHz mono s16le audio, JPEG images, JPEG frames of video.

Boundary: bytes and a ``content-type`` in, a frozen value (:class:`Pcm16k`, :class:`Jpeg`,
:class:`VideoFrames`) or a :class:`V1MediaError` out. No clock, no network, no files: the only work is
decoding, with PyAV (FFmpeg) for audio and video and Pillow for images. The functions are CPU-bound and
meant to run in a worker pool (thread or process): they are module-level, take and return only picklable
values, and share no state. :func:`prepare` is the one entry point a pool needs.

Work is bounded before it is spent: durations are read from the headers and refused over
:attr:`MediaLimits.max_audio_s` / :attr:`MediaLimits.max_video_s` before decoding (and again while
decoding, since headers can lie); pixel counts are read from the headers and refused over
:attr:`MediaLimits.max_source_px` before any pixel is decoded.

Containers are never probed: the format is chosen from the leading bytes (:func:`bridge.media.sniff`), so
FFmpeg never tries demuxers (playlists, concat lists) that could reach for other files or the network.

Raw PCM, as content types:
- ``audio/L16;rate=R[;channels=C]`` (RFC 2586): signed 16-bit **big-endian**, interleaved; ``rate`` is
  required, ``channels`` defaults to 1. ``audio/L24`` (RFC 3190) likewise, 24-bit big-endian.
- ``audio/pcm[;encoding=E][;rate=R][;channels=C]``: the form Hume v1 itself names. Assumed, since no RFC
  defines it: ``encoding`` defaults to ``s16le`` (little-endian, Hume's own encoding), ``rate`` to 16000,
  ``channels`` to 1. Encodings: s8, u8, s16le, s16be, s24le, s24be, s32le, s32be, f32le, f32be, f64le,
  f64be, mulaw, alaw.
A length that is not a whole number of sample frames is refused (AUDIO_DECODE_FAILED), never padded.
Bytes labelled as raw PCM that start with a RIFF/WAVE header are read as the WAV they are.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from typing import Any

import av
import av.error
from PIL import Image, ImageFile, UnidentifiedImageError

from bridge.errors import Code, MediaError
from bridge.media import MediaKind, inspect_audio, kind_of, sniff

# Hume v1's limits (HUME_V1.md, "Video realtime"): pixels per JPEG and bytes per message.
HUME_MAX_PIXELS = 8_294_400
HUME_MAX_JPEG_BYTES = 2_000_000  # "2 MB"; read as 10^6 bytes so that either reading of MB is met

TARGET_RATE = 16_000
BYTES_PER_SAMPLE = 2  # s16le mono
MAX_VIDEO_FPS = 3.0


class V1MediaError(MediaError):
    """A record that cannot be put into v1 form; becomes an error outcome with ``code``.

    Picklable (unlike a plain :class:`MediaError`), so that it crosses a process pool intact.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.message))


@dataclass(frozen=True, slots=True)
class MediaLimits:
    """Bounds on the work one record may cost; the caller builds it from configuration."""

    max_audio_s: float = 900.0  # 15 minutes of decoded audio (29 MB of 16 kHz s16le)
    max_video_s: float = 300.0  # 5 minutes of video (at most 900 frames at 3 fps)
    max_source_px: int = 40_000_000  # refuse larger images (and video frames) before decoding them
    jpeg_quality: int = 90
    max_fps: float = MAX_VIDEO_FPS


DEFAULT_LIMITS = MediaLimits()


@dataclass(frozen=True, slots=True)
class Pcm16k:
    """Audio as Hume's realtime endpoint takes it: headerless s16le, 16 kHz, mono."""

    pcm: bytes
    container: str  # "wav", "mp3", "pcm", ... what it was decoded from
    source_rate: int
    source_channels: int

    @property
    def samples(self) -> int:
        return len(self.pcm) // BYTES_PER_SAMPLE

    @property
    def duration_ms(self) -> float:
        return self.samples * 1000 / TARGET_RATE


@dataclass(frozen=True, slots=True)
class Jpeg:
    """One JPEG within Hume's limits (pixels and bytes)."""

    data: bytes
    width: int
    height: int
    source_format: str  # "JPEG", "PNG", "WEBP", "GIF", or "video"
    reencoded: bool  # False: the record's own bytes, unchanged


@dataclass(frozen=True, slots=True)
class VideoFrame:
    time_ms: int  # since the first decoded frame of the record
    jpeg: Jpeg


@dataclass(frozen=True, slots=True)
class VideoFrames:
    """Frames of a video record sampled at no more than ``max_fps``, in time order."""

    frames: tuple[VideoFrame, ...]
    container: str
    duration_ms: int  # of the record's video, first to last decoded frame


class V1Route(StrEnum):
    """Where a record goes in v1."""

    AUDIO = "audio"  # audio realtime endpoint, as Pcm16k
    IMAGE = "image"  # video realtime endpoint, one JPEG
    VIDEO = "video"  # video realtime endpoint, JPEG frames


def _err(code: Code, message: str) -> V1MediaError:
    return V1MediaError(code, message)


def _essence_and_params(content_type: str) -> tuple[str, dict[str, str]]:
    essence, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        name, eq, value = part.partition("=")
        if eq:
            params[name.strip().lower()] = value.strip().strip('"')
    return essence.strip().lower(), params


def route(value: bytes, content_type: str | None) -> V1Route:
    """The v1 route of a record; text and facemesh (and v0 envelopes) raise NOT_OFFERED_BY_API.

    The ``content-type`` decides; without it the leading bytes do (:func:`bridge.media.sniff`).
    """
    declared = content_type if content_type else sniff(value)
    if declared is None:
        raise _err(Code.UNSUPPORTED_MEDIA, "no content-type header and the bytes are not a known media type")
    kind = kind_of(declared)
    if kind in (MediaKind.TEXT, MediaKind.FACEMESH, MediaKind.ENVELOPE):
        raise _err(
            Code.NOT_OFFERED_BY_API,
            f"Hume v1 offers no model for {kind} records (content-type {_essence_and_params(declared)[0]})",
        )
    if kind is MediaKind.AUDIO:
        return V1Route.AUDIO
    if kind is MediaKind.IMAGE:
        return V1Route.IMAGE
    if kind is MediaKind.VIDEO:
        return V1Route.VIDEO
    raise _err(Code.UNSUPPORTED_MEDIA, f"content-type {_essence_and_params(declared)[0]!r} is not handled")


def is_native_pcm(value: bytes, content_type: str | None) -> bool:
    """True when the record already is 16 kHz mono s16le (``audio/pcm`` with those parameters, or none):
    the call audio a live producer sends, taken as it is without a worker thread."""
    if not content_type:
        return False
    essence, params = _essence_and_params(content_type)
    if essence != "audio/pcm" or value[:4] == b"RIFF":
        return False
    return (
        params.get("encoding", "s16le").lower() == "s16le"
        and params.get("rate", str(TARGET_RATE)).strip() == str(TARGET_RATE)
        and params.get("channels", "1").strip() == "1"
    )


def prepare(
    value: bytes, content_type: str | None, limits: MediaLimits = DEFAULT_LIMITS
) -> Pcm16k | Jpeg | VideoFrames:
    """Route and convert one record: the single picklable entry point for a worker pool."""
    kind = route(value, content_type)
    if kind is V1Route.AUDIO:
        return audio_to_pcm16k(value, content_type, limits)
    if kind is V1Route.IMAGE:
        return image_to_jpeg(value, limits)
    return video_to_frames(value, limits)


# --------------------------------------------------------------------------------------------------------
# Audio

# Raw PCM encodings: FFmpeg demuxer name and bytes per sample.
_PCM_ENCODINGS: dict[str, tuple[str, int]] = {
    "s8": ("s8", 1),
    "u8": ("u8", 1),
    "s16le": ("s16le", 2),
    "s16be": ("s16be", 2),
    "s24le": ("s24le", 3),
    "s24be": ("s24be", 3),
    "s32le": ("s32le", 4),
    "s32be": ("s32be", 4),
    "f32le": ("f32le", 4),
    "f32be": ("f32be", 4),
    "f64le": ("f64le", 8),
    "f64be": ("f64be", 8),
    "mulaw": ("mulaw", 1),
    "alaw": ("alaw", 1),
}
_RAW_TYPES = {"audio/l16": "s16be", "audio/l24": "s24be"}  # RFC 2586, RFC 3190: network byte order
_MIN_RATE, _MAX_RATE = 1_000, 384_000
_MAX_CHANNELS = 32

# Sniffed content type -> the FFmpeg demuxer that reads it.
_AUDIO_DEMUXERS = {
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/flac": "flac",
    "audio/ogg": "ogg",
    "video/ogg": "ogg",
    "audio/mp4": "mp4",
    "video/mp4": "mp4",
    "video/webm": "matroska",
    "video/x-matroska": "matroska",
    "audio/aiff": "aiff",
}
# Content types of containers the bridge reads: bytes that do not look like one are corrupt, not unknown.
_KNOWN_AUDIO_TYPES = frozenset(
    {"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/mpeg", "audio/mp3", "audio/aac"}
    | {"audio/flac", "audio/x-flac", "audio/ogg", "audio/opus", "audio/webm", "audio/mp4", "audio/m4a"}
)
# A declared duration the decoded audio falls short of by more than this is a truncated file.
_TRUNCATION_TOLERANCE_MS = 100.0


def _int_param(params: dict[str, str], name: str, default: int | None, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        if default is None:
            raise _err(Code.INVALID_MEDIA_PARAMETERS, f"content-type parameter {name} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _err(
            Code.INVALID_MEDIA_PARAMETERS, f"content-type parameter {name}={raw!r} is not an integer"
        ) from None
    if not low <= value <= high:
        raise _err(
            Code.INVALID_MEDIA_PARAMETERS, f"content-type parameter {name}={value} is outside {low}..{high}"
        )
    return value


def _raw_pcm_format(essence: str, params: dict[str, str]) -> tuple[str, int, int, int] | None:
    """(demuxer, bytes per sample, rate, channels) for a raw PCM content type, else None."""
    if essence in _RAW_TYPES:
        demuxer = _RAW_TYPES[essence]
        width = _PCM_ENCODINGS[demuxer][1]
        rate = _int_param(params, "rate", None, _MIN_RATE, _MAX_RATE)
    elif essence == "audio/pcm":
        encoding = params.get("encoding", "s16le").lower()
        if encoding not in _PCM_ENCODINGS:
            raise _err(
                Code.INVALID_MEDIA_PARAMETERS,
                f"audio/pcm encoding={encoding!r} is not one of {', '.join(_PCM_ENCODINGS)}",
            )
        demuxer, width = _PCM_ENCODINGS[encoding]
        rate = _int_param(params, "rate", TARGET_RATE, _MIN_RATE, _MAX_RATE)
    else:
        return None
    channels = _int_param(params, "channels", 1, 1, _MAX_CHANNELS)
    return demuxer, width, rate, channels


def audio_to_pcm16k(value: bytes, content_type: str | None, limits: MediaLimits = DEFAULT_LIMITS) -> Pcm16k:
    """Decode, downmix and resample an audio record to 16 kHz mono s16le (FFmpeg's swresample).

    Raises :class:`V1MediaError`: EMPTY_VALUE (no bytes), INVALID_MEDIA_PARAMETERS (raw PCM parameters),
    UNSUPPORTED_MEDIA (a container the bridge does not read), MALFORMED_MEDIA (a WAV whose chunks are
    truncated), AUDIO_DECODE_FAILED (corrupt, truncated, or a raw length that is not whole sample frames),
    AUDIO_TOO_LONG (over ``limits.max_audio_s``), EMPTY_MEDIA (no samples).
    """
    if not value:
        raise _err(Code.EMPTY_VALUE, "the record has no bytes")
    essence, params = _essence_and_params(content_type) if content_type else ("", {})
    raw = _raw_pcm_format(essence, params)
    # WAV chunks labelled as raw PCM are common: a RIFF/WAVE header means the header is right, not the label.
    if raw is not None and sniff(value) != "audio/wav":
        demuxer, width, rate, channels = raw
        frame_bytes = width * channels
        if len(value) % frame_bytes:
            raise _err(
                Code.AUDIO_DECODE_FAILED,
                f"{len(value)} bytes of {essence} are not whole sample frames of {frame_bytes} bytes "
                f"({width}-byte samples x {channels} channels)",
            )
        seconds = len(value) / frame_bytes / rate
        if seconds > limits.max_audio_s:
            raise _err(
                Code.AUDIO_TOO_LONG, f"{seconds:.1f} s of audio, over the limit of {limits.max_audio_s:g} s"
            )
        if (demuxer, rate, channels) == ("s16le", TARGET_RATE, 1):
            return Pcm16k(value, "pcm", rate, channels)  # already Hume's form: nothing to decode
        options = {"sample_rate": str(rate), "ch_layout": f"{channels}c"}
        return _decode_audio(value, demuxer, options, "pcm", limits)
    sniffed = sniff(value)
    if sniffed == "audio/wav":
        try:
            info = inspect_audio(value, "audio/wav")  # walks the RIFF chunks: truncated -> MALFORMED_MEDIA
        except MediaError as exc:
            raise _err(exc.code, exc.message) from exc
        declared_ms = info.duration_ms
        if declared_ms is not None and declared_ms > limits.max_audio_s * 1000:
            raise _err(
                Code.AUDIO_TOO_LONG,
                f"{declared_ms / 1000:.1f} s of audio, over the limit of {limits.max_audio_s:g} s",
            )
    container_format = _AUDIO_DEMUXERS.get(sniffed or "")
    if container_format is None:
        what = f"content-type {essence}" if essence else "the record"
        if sniffed is None and essence in _KNOWN_AUDIO_TYPES:
            raise _err(Code.AUDIO_DECODE_FAILED, f"{what}, but the bytes do not start like one")
        found = f"the bytes look like {sniffed}" if sniffed else "the bytes are not a known audio container"
        raise _err(Code.UNSUPPORTED_MEDIA, f"{what}: {found}")
    return _decode_audio(value, container_format, {}, container_format, limits)


def _decode_audio(
    value: bytes,
    demuxer: str,
    options: dict[str, str],
    container_name: str,
    limits: MediaLimits,
) -> Pcm16k:
    max_samples = int(limits.max_audio_s * TARGET_RATE)
    chunks: list[bytes] = []
    total = 0
    declared_ms: float | None = None
    try:
        with av.open(io.BytesIO(value), mode="r", format=demuxer, options=options) as container:
            if not container.streams.audio:
                raise _err(Code.AUDIO_DECODE_FAILED, f"the {container_name} container holds no audio stream")
            stream = container.streams.audio[0]
            if container.duration is not None and container.duration > 0:
                declared_ms = container.duration / 1000
                if declared_ms > limits.max_audio_s * 1000:
                    raise _err(
                        Code.AUDIO_TOO_LONG,
                        f"{declared_ms / 1000:.1f} s of audio, over the limit of {limits.max_audio_s:g} s",
                    )
            source_rate = getattr(stream, "rate", None) or 0  # absent when the codec is unreadable
            source_channels = getattr(stream, "channels", None) or 0
            resampler = av.AudioResampler(format="s16", layout="mono", rate=TARGET_RATE)
            for frame in _decoded_audio(container, stream):
                for out in resampler.resample(frame):
                    total += _take(out, chunks)
                if total > max_samples:
                    raise _err(
                        Code.AUDIO_TOO_LONG,
                        f"over {limits.max_audio_s:g} s of audio once decoded (headers said less)",
                    )
            for out in resampler.resample(None):
                total += _take(out, chunks)
    except V1MediaError:
        raise
    except MediaError as exc:
        raise _err(exc.code, exc.message) from exc
    except (av.error.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise _err(
            Code.AUDIO_DECODE_FAILED, f"{container_name} audio cannot be decoded: {_reason(exc)}"
        ) from exc
    if total == 0:
        raise _err(Code.EMPTY_MEDIA, f"the {container_name} audio holds no samples")
    decoded_ms = total * 1000 / TARGET_RATE
    if declared_ms is not None and decoded_ms + _TRUNCATION_TOLERANCE_MS < declared_ms * 0.95:
        raise _err(
            Code.AUDIO_DECODE_FAILED,
            f"{container_name} audio is truncated: "
            f"{decoded_ms:.0f} ms decoded of {declared_ms:.0f} ms declared",
        )
    return Pcm16k(b"".join(chunks), container_name, source_rate, source_channels)


def _decoded_audio(container: Any, stream: Any) -> Iterator[av.AudioFrame]:
    for packet in container.demux(stream):
        for frame in packet.decode():
            if isinstance(frame, av.AudioFrame):
                yield frame


def _take(frame: av.AudioFrame, chunks: list[bytes]) -> int:
    """Append the samples of a packed mono s16 frame (planes may be padded) and return their count."""
    n = frame.samples
    chunks.append(bytes(memoryview(frame.planes[0])[: n * BYTES_PER_SAMPLE]))
    return n


def _reason(exc: BaseException) -> str:
    """A library error as a short reason, without payload bytes (FFmpeg messages never quote data)."""
    if isinstance(exc, av.error.FFmpegError):
        return exc.strerror or type(exc).__name__
    return str(exc)[:200] or type(exc).__name__


# --------------------------------------------------------------------------------------------------------
# Images

_IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
_PASS_MODES = frozenset({"L", "RGB"})  # JPEG colour models every decoder reads; CMYK is re-encoded
_QUALITY_STEPS = (0, 15, 30)  # subtracted from the configured quality while the JPEG is over the byte limit


def _fit(width: int, height: int, max_px: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio and at most ``max_px`` pixels."""
    if width * height <= max_px:
        return width, height
    scale = math.sqrt(max_px / (width * height))
    w, h = max(1, int(width * scale)), max(1, int(height * scale))
    while w * h > max_px:
        if w >= h:
            w -= 1
        else:
            h -= 1
    return w, h


def image_to_jpeg(value: bytes, limits: MediaLimits = DEFAULT_LIMITS) -> Jpeg:
    """A JPEG Hume accepts: the record itself if it already is one within the limits, else re-encoded.

    PNG, WebP and GIF (its first frame) are re-encoded; transparency is flattened onto white. Images over
    8,294,400 pixels are scaled down (JPEGs through the decoder's own DCT scaling first). Raises
    :class:`V1MediaError`: EMPTY_VALUE, UNSUPPORTED_MEDIA (another image format), IMAGE_TOO_LARGE (over
    ``limits.max_source_px``, refused before decoding), IMAGE_DECODE_FAILED (corrupt or truncated).
    """
    if not value:
        raise _err(Code.EMPTY_VALUE, "the record has no bytes")
    try:
        im = Image.open(io.BytesIO(value), formats=_IMAGE_FORMATS)
    except UnidentifiedImageError:
        other = _other_image_format(value)
        if other is not None:
            raise _err(
                Code.UNSUPPORTED_MEDIA, f"{other} images are not read; send JPEG, PNG, WebP or GIF"
            ) from None
        raise _err(Code.IMAGE_DECODE_FAILED, "the bytes are not a readable JPEG, PNG, WebP or GIF") from None
    except Image.DecompressionBombError as exc:
        raise _err(Code.IMAGE_TOO_LARGE, f"image refused before decoding: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise _err(Code.IMAGE_DECODE_FAILED, f"image header cannot be read: {_reason(exc)}") from exc
    with im:
        fmt = im.format or "unknown"
        width, height = im.size
        return _to_jpeg(im, fmt, width, height, value, limits)


def _other_image_format(value: bytes) -> str | None:
    """The name of an image format Pillow recognises (headers only) that the bridge does not send, or None."""
    try:
        with Image.open(io.BytesIO(value)) as other:
            return other.format
    except Exception:  # any failure to identify means: not an image format at all
        return None


def _to_jpeg(
    im: Image.Image, fmt: str, width: int, height: int, value: bytes | None, limits: MediaLimits
) -> Jpeg:
    if width * height > limits.max_source_px:
        raise _err(
            Code.IMAGE_TOO_LARGE,
            f"{width}x{height} = {width * height:,} px, over the limit of {limits.max_source_px:,} px",
        )
    target = _fit(width, height, HUME_MAX_PIXELS)
    as_is = (
        value is not None
        and fmt == "JPEG"
        and target == (width, height)
        and len(value) <= HUME_MAX_JPEG_BYTES
        and im.mode in _PASS_MODES
    )
    try:
        if fmt == "JPEG" and target != (width, height):
            im.draft("RGB", target)  # let the JPEG decoder scale by 1/2, 1/4 or 1/8 while decoding
        im.load()  # the whole image, so that a truncated or corrupt one is refused here and not by Hume
    except Image.DecompressionBombError as exc:
        raise _err(Code.IMAGE_TOO_LARGE, f"image refused while decoding: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise _err(Code.IMAGE_DECODE_FAILED, f"{fmt} image cannot be decoded: {_reason(exc)}") from exc
    if as_is and value is not None:
        return Jpeg(value, width, height, fmt, reencoded=False)
    rgb = _flatten(im)
    if rgb.size != target:
        rgb = rgb.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return _encode_within(rgb, fmt, limits.jpeg_quality)


def _flatten(im: Image.Image) -> Image.Image:
    """RGB or L, with any transparency composited onto white."""
    if im.mode in _PASS_MODES:
        return im
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "RGBa"):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return im.convert("L")
    return im.convert("RGB")


def _encode_within(im: Image.Image, source_format: str, quality: int) -> Jpeg:
    """Encode as JPEG, lowering quality and then size until it fits in Hume's byte limit (bounded loop)."""
    current = im
    for _ in range(8):
        for step in _QUALITY_STEPS:
            buf = io.BytesIO()
            current.save(buf, format="JPEG", quality=max(30, quality - step), optimize=False)
            if buf.tell() <= HUME_MAX_JPEG_BYTES:
                w, h = current.size
                return Jpeg(buf.getvalue(), w, h, source_format, reencoded=True)
        w, h = current.size
        current = current.resize((max(1, int(w * 0.7)), max(1, int(h * 0.7))), Image.Resampling.LANCZOS)
    raise _err(Code.IMAGE_TOO_LARGE, "image does not fit in 2 MB as JPEG even scaled down")  # not reachable


# Pillow must not accept truncated images silently: a truncated record is an error outcome.
ImageFile.LOAD_TRUNCATED_IMAGES = False


# --------------------------------------------------------------------------------------------------------
# Video

_VIDEO_DEMUXERS = {
    "video/mp4": "mp4",
    "audio/mp4": "mp4",
    "video/webm": "matroska",
    "video/x-matroska": "matroska",
    "video/ogg": "ogg",
}


def video_to_frames(value: bytes, limits: MediaLimits = DEFAULT_LIMITS) -> VideoFrames:
    """JPEG frames of a video record, at most ``limits.max_fps`` per second, with their times.

    A frame is kept when at least 1/max_fps s has passed since the last kept one (exact rational times), so
    no second of the record yields more than max_fps frames. Raises :class:`V1MediaError`: EMPTY_VALUE,
    UNSUPPORTED_MEDIA, VIDEO_TOO_LONG (headers or decoding past ``limits.max_video_s``), IMAGE_TOO_LARGE
    (frames over ``limits.max_source_px``), VIDEO_DECODE_FAILED (corrupt, truncated, no video stream),
    EMPTY_MEDIA (no frames).
    """
    if not value:
        raise _err(Code.EMPTY_VALUE, "the record has no bytes")
    sniffed = sniff(value)
    demuxer = _VIDEO_DEMUXERS.get(sniffed or "")
    if demuxer is None:
        found = f"the bytes look like {sniffed}" if sniffed else "the bytes are not a known video container"
        raise _err(Code.UNSUPPORTED_MEDIA, f"video record: {found} (MP4, WebM, Matroska or Ogg expected)")
    period = Fraction(1) / Fraction(limits.max_fps).limit_denominator(1000)
    max_t = Fraction(limits.max_video_s).limit_denominator(1000)
    kept: list[VideoFrame] = []
    first: Fraction | None = None
    last_kept: Fraction | None = None
    last_t = Fraction(0)
    declared_ms: float | None = None
    frame_ms = 0.0
    try:
        with av.open(io.BytesIO(value), mode="r", format=demuxer) as container:
            if not container.streams.video:
                raise _err(Code.VIDEO_DECODE_FAILED, f"the {demuxer} container holds no video stream")
            stream = container.streams.video[0]
            if container.duration is not None and container.duration > limits.max_video_s * 1_000_000:
                raise _err(
                    Code.VIDEO_TOO_LONG,
                    f"{container.duration / 1e6:.1f} s of video, over the limit of {limits.max_video_s:g} s",
                )
            if container.duration is not None and container.duration > 0:
                declared_ms = container.duration / 1000
            w, h = stream.codec_context.width, stream.codec_context.height
            if w * h > limits.max_source_px:
                raise _err(
                    Code.IMAGE_TOO_LARGE, f"video frames of {w}x{h} px, over {limits.max_source_px:,} px"
                )
            time_base = stream.time_base or Fraction(1, 1000)
            rate = stream.average_rate
            frame_ms = 1000 / float(rate) if rate else 0.0  # how long the last frame lasts after its time
            for packet in container.demux(stream):
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame) or frame.pts is None:
                        continue
                    t = Fraction(frame.pts) * time_base
                    if first is None:
                        first = t
                    rel = t - first
                    if rel > max_t:
                        raise _err(
                            Code.VIDEO_TOO_LONG, f"video runs past {limits.max_video_s:g} s once decoded"
                        )
                    last_t = max(last_t, rel)
                    if last_kept is not None and rel - last_kept < period:
                        continue
                    last_kept = rel
                    if frame.width * frame.height > limits.max_source_px:
                        raise _err(Code.IMAGE_TOO_LARGE, f"a video frame of {frame.width}x{frame.height} px")
                    image: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]
                    jpeg = _to_jpeg(image, "video", image.width, image.height, None, limits)
                    kept.append(VideoFrame(int(rel * 1000), jpeg))
    except V1MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise _err(Code.VIDEO_DECODE_FAILED, f"{demuxer} video cannot be decoded: {_reason(exc)}") from exc
    if not kept:
        raise _err(Code.EMPTY_MEDIA, f"the {demuxer} video holds no frames")
    end_ms = float(last_t) * 1000 + frame_ms
    if declared_ms is not None and end_ms + _TRUNCATION_TOLERANCE_MS < declared_ms * 0.9:
        raise _err(
            Code.VIDEO_DECODE_FAILED,
            f"{demuxer} video is truncated: frames up to {float(last_t) * 1000:.0f} ms "
            f"of {declared_ms:.0f} ms declared",
        )
    return VideoFrames(tuple(kept), demuxer, int(last_t * 1000))
