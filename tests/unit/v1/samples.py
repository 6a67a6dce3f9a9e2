"""Media generated for the v1 media tests: tones in every container PyAV can write, images, short videos.

Everything is made here, in memory, so that the tests need no files and can say exactly what went in.
"""

from __future__ import annotations

import array
import io
import math
import struct
import sys

import av
from PIL import Image

TONE_HZ = 440.0


def tone(
    rate: int, seconds: float, channels: int = 1, freq: float = TONE_HZ, amp: float = 0.3
) -> list[float]:
    """Interleaved samples in -1..1: the same sine on every channel."""
    n = round(rate * seconds)
    out: list[float] = []
    for i in range(n):
        v = amp * math.sin(2 * math.pi * freq * i / rate)
        out.extend([v] * channels)
    return out


def s16(samples: list[float], big_endian: bool = False) -> bytes:
    a = array.array("h", (round(v * 32767) for v in samples))
    if (sys.byteorder == "big") != big_endian:
        a.byteswap()
    return a.tobytes()


def wav(
    rate: int,
    seconds: float,
    channels: int = 1,
    bits: int = 16,
    floating: bool = False,
    extensible: bool = False,
) -> bytes:
    """A WAV file written by hand, so that every header variant (8/16/24/32-bit, float, extensible) exists."""
    samples = tone(rate, seconds, channels)
    if floating:
        data = struct.pack(f"<{len(samples)}f", *samples)
    elif bits == 8:
        data = bytes(round(v * 127) + 128 for v in samples)
    elif bits == 16:
        data = s16(samples)
    elif bits == 24:
        data = b"".join(struct.pack("<i", round(v * 8_388_607))[:3] for v in samples)
    else:
        data = struct.pack(f"<{len(samples)}i", *(round(v * 2_147_483_647) for v in samples))
    block = channels * bits // 8
    tag = 3 if floating else 1
    if extensible:
        sub = struct.pack("<HI", 3, 0) + struct.pack(
            "<IHH8s", tag, 0x0000, 0x0010, bytes.fromhex("800000aa00389b71")
        )
        fmt = struct.pack("<HHIIHHH", 0xFFFE, channels, rate, rate * block, block, bits, 22)
        fmt += struct.pack("<H", bits) + struct.pack("<I", (1 << channels) - 1) + sub[6:]
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = (
        b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    )
    if len(data) & 1:
        body += b"\x00"
    return b"RIFF" + struct.pack("<I", len(body)) + body


def encoded(container: str, codec: str, rate: int, seconds: float, channels: int = 1) -> bytes:
    """A tone encoded by FFmpeg (MP3, AAC, Opus, FLAC, ...) in the given container."""
    samples = tone(rate, seconds, channels)
    layout = "mono" if channels == 1 else "stereo"
    frame = av.AudioFrame(format="s16", layout=layout, samples=len(samples) // channels)
    frame.planes[0].update(s16(samples))
    frame.sample_rate = rate
    frame.pts = 0
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = layout  # type: ignore[union-attr]
        fmt = stream.codec_context.format  # type: ignore[union-attr]
        resampler = av.AudioResampler(format=fmt.name if fmt else "s16", layout=layout, rate=rate)
        for piece in resampler.resample(frame):
            for packet in stream.encode(piece):  # type: ignore[union-attr, arg-type]
                out.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            out.mux(packet)
    return buf.getvalue()


def image(fmt: str, size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    """A small gradient image in the given Pillow format."""
    im = Image.new(mode, size)
    w, h = size
    if mode in ("RGB", "RGBA"):
        im.putdata(
            [
                ((x * 255) // max(1, w - 1), (y * 255) // max(1, h - 1), 128, 200)[: len(mode)]
                for y in range(h)
                for x in range(w)
            ]
        )
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def video(container: str, codec: str, fps: int, seconds: float, size: tuple[int, int] = (64, 48)) -> bytes:
    """A short video of changing solid colours."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size  # type: ignore[union-attr]
        stream.pix_fmt = "yuv420p"  # type: ignore[union-attr]
        for i in range(round(fps * seconds)):
            im = Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, 90))
            frame = av.VideoFrame.from_image(im)  # type: ignore[no-untyped-call]
            frame.pts = i
            for packet in stream.encode(frame):  # type: ignore[union-attr]
                out.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            out.mux(packet)
    return buf.getvalue()


def zero_crossings_hz(pcm16k: bytes) -> float:
    """The frequency of a tone in 16 kHz s16le, from its rising zero crossings."""
    a = array.array("h")
    a.frombytes(pcm16k)
    if sys.byteorder == "big":
        a.byteswap()
    # Over the sounding part only (codecs add silence before and after), rising crossings with hysteresis,
    # so that codec noise near silence does not count.
    loud = [i for i, v in enumerate(a) if abs(v) > 1000]
    if not loud:
        return 0.0
    a = a[loud[0] : loud[-1] + 1]
    rising, armed = 0, False
    for v in a:
        if v < -1000:
            armed = True
        elif v > 1000 and armed:
            rising, armed = rising + 1, False
    return rising / (len(a) / 16_000)


def peak(pcm16k: bytes) -> int:
    a = array.array("h")
    a.frombytes(pcm16k)
    return max(abs(v) for v in a) if a else 0
