"""Output records: what the bridge publishes for an :class:`Output`, built without I/O.

Key = the input key; headers = the first covered record's headers plus ``hume-source:
<topic>/<partition>/<offset>``. An output covering one record has that record's ``payload_id`` and
``source``; one covering several has ``sources``, one entry per record, in order.

``stream_id`` is the key as text when the key is UTF-8, and ``{"base64": "<the key's bytes>"}`` when it
is not: a JSON object cannot collide with any string, so no UTF-8 key can spell another key's id.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from bridge.core.model import Headers, Output

StreamId = str | dict[str, str] | None


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
    api: str = "v0"  # v1: error records say "api": "v1"


def stream_id(key: bytes | None) -> StreamId:
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(key).decode("ascii")}


def out_headers(headers: Headers, source_ref: str) -> list[tuple[str, bytes]]:
    kept = [(k, v) for k, v in headers if k != "hume-source"]
    kept.append(("hume-source", source_ref.encode()))
    return kept


def render_v1(output: Output, fields: dict[str, Any], topics: Topics, now: float) -> OutputRecord:
    """One v1 measurement: ``{"api", "stream_id", "endpoint", "mode", "session_id", "measurement",
    "sources", "stream_ms"?, "latency_ms"}``; latency from the consumption of the last record it covers."""
    first, last = output.records[0], output.records[-1]
    value = {"api": "v1", "stream_id": stream_id(first.key), **fields}
    value["latency_ms"] = round((now - last.consumed_at) * 1000.0, 3)
    headers = out_headers(first.headers, first.source.ref)
    return OutputRecord(topics.predictions, first.key, orjson.dumps(value), headers)


def render(output: Output, topics: Topics, now: float) -> list[OutputRecord]:
    """Warnings first, then the one prediction or error record."""
    fields = output.fields
    if fields is not None and fields.get("api") == "v1" and output.error is None:
        return [render_v1(output, {k: v for k, v in fields.items() if k != "api"}, topics, now)]
    records = output.records
    first = records[0]
    source = first.source
    key = first.key
    headers = out_headers(first.headers, source.ref)
    common: dict[str, Any] = {"api": topics.api} if topics.api != "v0" else {}
    if len(records) == 1:
        common |= {"stream_id": stream_id(key), "payload_id": first.payload_id, "source": source.as_json()}
        attempts = first.attempts
    else:
        common |= {"stream_id": stream_id(key), "sources": [w.source.as_json() for w in records]}
        attempts = max(w.attempts for w in records)
    out: list[OutputRecord] = []
    for warning in output.warnings:
        value = {
            **common,
            "warning": {"code": warning.code, "message": warning.message, "model": warning.model},
        }
        out.append(OutputRecord(topics.warnings, key, orjson.dumps(value), headers))
    error = output.error
    if error is not None:
        common["error"] = {
            "code": error.code,
            "message": error.message,
            "origin": error.origin,
            "retriable": error.retriable,
        }
        common["attempts"] = attempts
        out.append(OutputRecord(topics.errors, key, orjson.dumps(common), headers))
    else:
        if output.fields:
            common.update(output.fields)
        common["latency_ms"] = round((now - first.consumed_at) * 1000.0, 3)
        common["attempts"] = attempts
        out.append(OutputRecord(topics.predictions, key, orjson.dumps(common), headers))
    return out
