"""Hume v0's per-payload limits (HUME_V0_STREAMING.md, "Limits per payload"): the bridge's one copy."""

AUDIO_LIMIT_MS = 5000
IMAGE_LIMIT_PX = 3000
TEXT_LIMIT_CHARS = 10_000
FACEMESH_LIMIT_FACES = 10
