"""Outcome records: what the bridge publishes for a record, built without I/O.

Key = the input key; headers = the input headers plus ``hume-source: <topic>/<partition>/<offset>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from bridge.core.model import Headers, Outcome, Work


@dataclass(frozen=True, slots=True)
class OutputRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Topics:
    predictions: str
    errors: str
    warnings: str


def stream_id(key: bytes | None) -> str | None:
    return None if key is None else key.decode("utf-8", "backslashreplace")


def out_headers(headers: Headers, source_ref: str) -> list[tuple[str, bytes]]:
    kept = [(k, v) for k, v in headers if k != "hume-source"]
    kept.append(("hume-source", source_ref.encode()))
    return kept


def outcome_records(work: Work, outcome: Outcome, topics: Topics, now: float) -> list[OutputRecord]:
    """Warnings first, then the one outcome record (predictions or error)."""
    source = work.source
    sid = stream_id(work.key)
    src = source.as_json()
    headers = out_headers(work.headers, source.ref)
    out: list[OutputRecord] = []
    for warning in outcome.warnings:
        value = {
            "stream_id": sid,
            "payload_id": work.payload_id,
            "source": src,
            "warning": {"code": warning.code, "message": warning.message, "model": warning.model},
        }
        out.append(OutputRecord(topics.warnings, work.key, orjson.dumps(value), headers))
    body: dict[str, Any] = {"stream_id": sid, "payload_id": work.payload_id, "source": src}
    if outcome.error is not None:
        e = outcome.error
        body["error"] = {"code": e.code, "message": e.message, "origin": e.origin, "retriable": e.retriable}
        body["attempts"] = work.attempts
        out.append(OutputRecord(topics.errors, work.key, orjson.dumps(body), headers))
    else:
        body["models"] = outcome.models or {}
        if outcome.job_details is not None:
            body["job_details"] = outcome.job_details
        body["latency_ms"] = round((now - work.consumed_at) * 1000.0, 3)
        body["attempts"] = work.attempts
        out.append(OutputRecord(topics.predictions, work.key, orjson.dumps(body), headers))
    return out
