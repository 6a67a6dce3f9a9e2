"""Hume v0 streaming (``/v0/stream/models``), sans I/O: request frames out, reply verdicts in.

Replies carry no type field; they are told apart by their keys:
predictions ``{"payload_id", "<model>": {...}}``, error ``{"error", "code"}``, warning at the top level
``{"warning", "code"}`` or nested under a model ``{"face": {"warning", "code"}}``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge.core.model import ErrorInfo, Origin, OutageReason, WarningInfo

OUT_OF_CREDITS = "E0300"
MODEL_NAMES = ("face", "language", "prosody", "burst", "facemesh")


def encode_request(
    body: dict[str, Any], payload_id: str, reset_stream: bool, media: bytes | None = None
) -> bytes:
    """The JSON text frame for one payload; ``media`` (raw bytes) becomes the base64 ``data`` field."""
    frame = {**body, "payload_id": payload_id}
    if media is not None:
        frame["data"] = base64.b64encode(media).decode("ascii")
    if reset_stream:
        frame["reset_stream"] = True
    return orjson.dumps(frame)


@dataclass(slots=True)
class Outcome:
    """What Hume said for one payload: its model objects verbatim, or an error; plus warnings."""

    models: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    warnings: list[WarningInfo] = field(default_factory=list)
    job_details: Any = None


@dataclass(frozen=True, slots=True)
class Final:
    """The payload is done: predictions, or an error Hume will repeat on a retry (E01xx, E02xx)."""

    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient error for this payload: send it again later (counts an attempt)."""

    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class Outage:
    """Hume refuses the account as a whole (out of credits): pause, probe, do not fail the record."""

    reason: OutageReason
    error: ErrorInfo


Verdict = Final | Retry | Outage


def parse_frame(data: str | bytes) -> dict[str, Any] | None:
    """A reply frame as an object, or None when it is not a JSON object."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def reply_payload_id(reply: dict[str, Any]) -> str | None:
    pid = reply.get("payload_id")
    return pid if isinstance(pid, str) else None


def judge(reply: dict[str, Any]) -> Verdict:
    """What a reply means for its payload."""
    if "error" in reply:
        code = str(reply.get("code") or "E????")
        message = str(reply.get("error"))
        if code == OUT_OF_CREDITS:
            return Outage(OutageReason.OUT_OF_CREDITS, ErrorInfo(code, message, Origin.HUME, False))
        if code.startswith(("E01", "E02")):
            return Final(Outcome(error=ErrorInfo(code, message, Origin.HUME, False)))
        return Retry(ErrorInfo(code, message, Origin.HUME, True))
    warnings: list[WarningInfo] = []
    if "warning" in reply:
        warnings.append(WarningInfo(str(reply.get("code") or "W????"), str(reply["warning"]), None))
    models: dict[str, Any] = {}
    for name in MODEL_NAMES:
        value = reply.get(name)
        if value is None:
            continue
        models[name] = value
        if isinstance(value, dict) and "warning" in value:
            warnings.append(WarningInfo(str(value.get("code") or "W????"), str(value["warning"]), name))
    return Final(Outcome(models=models, warnings=warnings, job_details=reply.get("job_details")))
