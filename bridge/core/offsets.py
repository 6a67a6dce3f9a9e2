"""Offset tracking: what may be committed for each partition.

A partition's commit point is the lowest offset whose outcome is not yet acknowledged (every record below
it is done), or one past the last admitted record when all are done. Records are admitted in offset order
(as the consumer yields them) and finish in any order. A revoked partition is forgotten, so nothing can
be committed for it again until it is assigned anew.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass(slots=True)
class PartitionOffsets:
    """Admitted offsets of one partition, oldest first, with a done flag each."""

    pending: deque[int] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)
    next_offset: int | None = None  # one past the last admitted offset
    committed: int | None = None  # the last commit point handed out

    def admit(self, offset: int) -> None:
        if self.next_offset is not None and offset < self.next_offset:
            raise ValueError(f"offset {offset} admitted after {self.next_offset - 1}: offsets must increase")
        self.pending.append(offset)
        self.next_offset = offset + 1

    def finish(self, offset: int) -> None:
        self.done.add(offset)
        pending, done = self.pending, self.done
        while pending and pending[0] in done:
            done.discard(pending.popleft())

    def commit_point(self) -> int | None:
        if self.pending:
            return self.pending[0]
        return self.next_offset

    @property
    def outstanding(self) -> int:
        return len(self.pending)


class OffsetTracker:
    """Commit points for every assigned partition."""

    def __init__(self) -> None:
        self._parts: dict[TopicPartition, PartitionOffsets] = {}

    def assign(self, tp: TopicPartition) -> None:
        self._parts.setdefault(tp, PartitionOffsets())

    def revoke(self, tp: TopicPartition) -> None:
        self._parts.pop(tp, None)

    def is_assigned(self, tp: TopicPartition) -> bool:
        return tp in self._parts

    def admit(self, tp: TopicPartition, offset: int) -> None:
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = PartitionOffsets()
        part.admit(offset)

    def finish(self, tp: TopicPartition, offset: int) -> bool:
        """Mark a record done; False when its partition was revoked meanwhile (nothing to commit)."""
        part = self._parts.get(tp)
        if part is None:
            return False
        part.finish(offset)
        return True

    def to_commit(self) -> dict[TopicPartition, int]:
        """Commit points that moved since the last call (and records them as handed out)."""
        out: dict[TopicPartition, int] = {}
        for tp, part in self._parts.items():
            point = part.commit_point()
            if point is not None and point != part.committed:
                out[tp] = point
        return out

    def committed(self, commits: dict[TopicPartition, int]) -> None:
        """Record that ``commits`` reached the broker."""
        for tp, point in commits.items():
            part = self._parts.get(tp)
            if part is not None:
                part.committed = point

    def outstanding(self, tp: TopicPartition | None = None) -> int:
        if tp is not None:
            part = self._parts.get(tp)
            return part.outstanding if part else 0
        return sum(p.outstanding for p in self._parts.values())

    def lag_base(self, tp: TopicPartition) -> int | None:
        """The offset lag is measured from: the last commit, else the current commit point."""
        part = self._parts.get(tp)
        if part is None:
            return None
        return part.committed if part.committed is not None else part.commit_point()
