"""Flow control: buffer accounting and the pause/resume decision, with hysteresis.

Records and their value bytes are counted from admission until they are done (or dropped on
revocation). At either cap fetching pauses; it resumes only once both are at or below ``resume_ratio``
of their caps, so the consumer does not flap at the boundary. Pure: the shell pauses and resumes.
"""

from __future__ import annotations

from enum import StrEnum


class FlowChange(StrEnum):
    PAUSED = "paused"
    RESUMED = "resumed"


class FlowControl:
    def __init__(self, max_records: int, max_bytes: int, resume_ratio: float) -> None:
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.resume_records = max_records * resume_ratio
        self.resume_bytes = max_bytes * resume_ratio
        self.records = 0
        self.bytes = 0
        self.paused = False  # for memory

    def admit(self, size: int) -> None:
        self.records += 1
        self.bytes += size

    def release(self, size: int) -> None:
        self.records -= 1
        self.bytes -= size

    def update(self) -> FlowChange | None:
        """Re-decide the memory pause; returns the change, if any."""
        if self.records >= self.max_records or self.bytes >= self.max_bytes:
            if not self.paused:
                self.paused = True
                return FlowChange.PAUSED
        elif self.paused and self.records <= self.resume_records and self.bytes <= self.resume_bytes:
            self.paused = False
            return FlowChange.RESUMED
        return None

    def want_paused(self, *, outage: bool, stopping: bool) -> bool:
        """Whether every assigned partition should be paused now."""
        return self.paused or outage or stopping
