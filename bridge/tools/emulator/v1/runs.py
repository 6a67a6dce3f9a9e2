"""Runs: the record of every realtime session and upload, listable with filters and cursor pagination.

A run holds status, configuration, problems and billing, never results. ``metered_seconds``: audio seconds
accepted, or 1/3 s per video frame accepted, at least 10 s for a run that took in any media, 0 for a failed
upload. ``bytes_received`` counts the media bytes accepted (audio PCM; JPEG bytes); ``bytes_recorded`` is
always null (the emulator records nothing). Problem events are capped at 100 per kind; ``gaps`` is always
false. Cursors are opaque (base64url of the last item's sequence number).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from bridge.tools.emulator.v1 import limits as L

Json = dict[str, Any]


class RunStatus(StrEnum):
    LIVE = "live"
    ENDED = "ended"
    ERRORED = "errored"


class EventKind(StrEnum):
    INVALID_AUDIO_FRAME = "invalid_audio_frame"
    INVALID_IMAGE_FRAME = "invalid_image_frame"
    RATE_LIMITED = "rate_limited"
    INFERENCE_FAILED = "inference_failed"
    MESSAGE_TOO_LARGE = "message_too_large"


EVENT_OF_ERROR: dict[str, EventKind] = {
    "invalid_audio_frame": EventKind.INVALID_AUDIO_FRAME,
    "invalid_image_frame": EventKind.INVALID_IMAGE_FRAME,
    "rate_limited": EventKind.RATE_LIMITED,
    "internal_error": EventKind.INFERENCE_FAILED,
    "message_too_large": EventKind.MESSAGE_TOO_LARGE,
}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_of(credential: str) -> str:
    return "user_" + hashlib.sha256(credential.encode()).hexdigest()[:16]


@dataclass(slots=True)
class Run:
    seq: int
    run_id: str
    user_id: str
    endpoint: str  # audio | video
    mode: str  # realtime | file
    started_at: float
    config: Json
    status: RunStatus = RunStatus.LIVE
    ended_at: float | None = None
    bytes_received: int = 0
    media_seconds: float = 0.0
    close_code: int | None = None
    close_reason: str | None = None
    events: list[Json] = field(default_factory=list)
    event_counts: Counter[str] = field(default_factory=Counter)
    capped: set[str] = field(default_factory=set)
    failed: bool = False
    digest: Any = field(default_factory=hashlib.sha256)  # of the accepted media, in order
    accepted_audio: bytearray | None = None  # the accepted audio itself, when recording is on

    @property
    def metered_seconds(self) -> float:
        if self.failed or self.media_seconds <= 0:
            return 0.0
        return round(max(L.MIN_METERED_S, self.media_seconds), 3)

    def accept(self, media: bytes, seconds: float) -> None:
        self.bytes_received += len(media)
        self.media_seconds += seconds
        self.digest.update(media)
        if self.accepted_audio is not None:
            self.accepted_audio += media

    def problem(self, kind: EventKind, at: float, detail: Json | None = None) -> None:
        self.event_counts[kind] += 1
        if self.event_counts[kind] > L.RUN_EVENT_CAP_PER_KIND:
            self.capped.add(kind)
            return
        event: Json = {"seq": len(self.events) + 1, "at": iso(at), "kind": kind.value}
        if detail is not None:
            event["detail"] = detail
        self.events.append(event)

    def end(self, status: RunStatus, at: float, close_code: int | None, close_reason: str | None) -> None:
        if self.status is not RunStatus.LIVE:
            return
        self.status, self.ended_at, self.close_code, self.close_reason = status, at, close_code, close_reason

    def summary(self) -> Json:
        return {
            "run_id": self.run_id,
            "user_id": self.user_id,
            "status": self.status.value,
            "endpoint": self.endpoint,
            "mode": self.mode,
            "started_at": iso(self.started_at),
            "ended_at": None if self.ended_at is None else iso(self.ended_at),
            "bytes_received": self.bytes_received,
            "bytes_recorded": None,
            "metered_seconds": self.metered_seconds,
        }

    def detail(self) -> Json:
        return {
            **self.summary(),
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "config": self.config,
        }

    @property
    def accepted_sha256(self) -> str:
        return str(self.digest.copy().hexdigest())


class QueryError(ValueError):
    """A bad filter, page size or cursor: HTTP 400 ``invalid_request``."""


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"c{seq}".encode()).decode().rstrip("=")


def _uncursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith("c"):
            raise ValueError
        return int(text[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise QueryError("cursor: not a cursor this server gave") from None


def _time(value: str, name: str) -> float:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name}: not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def page_size(query: Mapping[str, str]) -> int:
    raw = query.get("page_size")
    if raw is None:
        return L.RUN_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        raise QueryError("page_size: not an integer") from None
    if not 1 <= size <= L.MAX_RUN_PAGE_SIZE:
        raise QueryError(f"page_size: must be from 1 to {L.MAX_RUN_PAGE_SIZE}")
    return size


_FILTERS = {
    "status": {s.value for s in RunStatus},
    "mode": {"realtime", "file"},
    "endpoint": {"audio", "video"},
}
_KNOWN_PARAMS = {"page_size", "cursor", "started_before", "started_after", "user_id", *_FILTERS}


class Runs:
    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._seq = itertools.count(1)

    def new(
        self, run_id: str, user_id: str, endpoint: str, mode: str, started_at: float, config: Json
    ) -> Run:
        run = Run(next(self._seq), run_id, user_id, endpoint, mode, started_at, config)
        self._runs[run_id] = run
        return run

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def __iter__(self) -> Any:
        return iter(self._runs.values())

    def __len__(self) -> int:
        return len(self._runs)

    def clear(self) -> None:
        self._runs = {rid: run for rid, run in self._runs.items() if run.status is RunStatus.LIVE}

    def list(self, query: Mapping[str, str]) -> Json:
        """``{"runs": [RunSummary], "next_cursor"?}``, newest first; :class:`QueryError` on bad input. Every
        credential sees the runs of every credential (one organisation); ``user_id`` filters."""
        problems = [f"{k}: unknown parameter" for k in query if k not in _KNOWN_PARAMS]
        for name, allowed in _FILTERS.items():
            if name in query and query[name] not in allowed:
                problems.append(f"{name}: must be one of {', '.join(sorted(allowed))}")
        if problems:
            raise QueryError("; ".join(problems))
        size = page_size(query)
        before = _time(query["started_before"], "started_before") if "started_before" in query else None
        after = _time(query["started_after"], "started_after") if "started_after" in query else None
        below = _uncursor(query["cursor"]) if "cursor" in query else None
        picked: list[Run] = []
        for run in sorted(self._runs.values(), key=lambda r: r.seq, reverse=True):
            if below is not None and run.seq >= below:
                continue
            if "user_id" in query and run.user_id != query["user_id"]:
                continue
            if any(name in query and getattr(run, name) != query[name] for name in _FILTERS):
                continue
            if (before is not None and run.started_at >= before) or (
                after is not None and run.started_at <= after
            ):
                continue
            picked.append(run)
            if len(picked) > size:
                break
        body: Json = {"runs": [r.summary() for r in picked[:size]]}
        if len(picked) > size:
            body["next_cursor"] = _cursor(picked[size - 1].seq)
        return body

    @staticmethod
    def events(run: Run, query: Mapping[str, str]) -> Json:
        problems = [f"{k}: unknown parameter" for k in query if k not in ("page_size", "cursor")]
        if problems:
            raise QueryError("; ".join(problems))
        size = page_size(query)
        after = _uncursor(query["cursor"]) if "cursor" in query else 0
        rest = [e for e in run.events if e["seq"] > after]
        body: Json = {
            "events": rest[:size],
            "at_cap": bool(run.capped),
            "capped_kinds": sorted(run.capped),
            "gaps": False,
        }
        if len(rest) > size:
            body["next_cursor"] = _cursor(rest[size - 1]["seq"])
        return body
