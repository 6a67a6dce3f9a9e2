"""The emulator's own copy of Hume v1's limits and defaults (never imported from the bridge)."""

from __future__ import annotations

from typing import Final

SAMPLE_RATE: Final = 16_000
BYTES_PER_MS: Final = SAMPLE_RATE * 2 // 1000  # 32: s16le mono
AUDIO_CONFIG: Final = {"type": "audio/pcm", "encoding": "s16le", "sample_rate": SAMPLE_RATE, "channels": 1}
DEFAULT_TIMER_MS: Final = 3000
MIN_TIMER_MS: Final = 3000
MAX_TIMER_MS: Final = 10_000
MAX_AUDIO_FRAME_BYTES: Final = 320_000  # 10 s
MAX_AUDIO_MESSAGE_BYTES: Final = 1 << 20  # 1 MiB
WINDOW_MS: Final = 10_000  # a measurement covers at most the last 10 s of its utterance
MIN_GAP_FOR_SPEECH_ENDED_MS: Final = 1000

IMAGE_CONFIG: Final = {"type": "image/jpeg"}
DEFAULT_FACE_THRESHOLD: Final = 0.9
DEFAULT_FACE_MIN_SIZE: Final = 60
MAX_VIDEO_FRAME_BYTES: Final = 2_000_000  # "2 MB", read as decimal megabytes
MAX_IMAGE_PIXELS: Final = 8_294_400  # 3840 x 2160
VIDEO_FPS: Final = 3.0
MEASURED_FACES: Final = 2
LISTED_FACES: Final = 32
REMEMBERED_FACES: Final = 32
VIDEO_ERRORS_IN_A_ROW_END: Final = 5

MAX_UPLOAD_BYTES: Final = 25_000_000  # "25 MB" (about 13 minutes of 16 kHz s16le)
MIN_METERED_S: Final = 10.0
VIDEO_FRAME_METERED_S: Final = 1.0 / 3.0
FACE_STATE_TTL_S: Final = 24 * 3600.0
RUN_PAGE_SIZE: Final = 50
MAX_RUN_PAGE_SIZE: Final = 1000
RUN_EVENT_CAP_PER_KIND: Final = 100

CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_POLICY: Final = 1008  # session-ending errors
