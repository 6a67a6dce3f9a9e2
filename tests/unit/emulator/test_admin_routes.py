"""The admin endpoint's routing, without sockets."""

from __future__ import annotations

from bridge.tools.emulator import Emulator, RequestLogEntry
from bridge.tools.emulator.admin import route


def entry(connection_id: int, payload_id: str) -> RequestLogEntry:
    return RequestLogEntry(connection_id, payload_id, ("face",), False, (), "predictions", None)


def test_stats_and_reset() -> None:
    emu = Emulator()
    emu.stats.requests = 5
    assert route(emu, "GET", "/stats", b"") == (200, emu.stats.snapshot())
    status, body = route(emu, "POST", "/reset-stats", b"")
    assert status == 200 and body["requests"] == 0 and emu.stats.requests == 0


def test_faults_get_and_post() -> None:
    emu = Emulator()
    assert route(emu, "GET", "/faults", b"") == (200, emu.faults.to_dict())
    status, body = route(emu, "POST", "/faults", b'{"latency_s": 0.25, "out_of_credits": true}')
    assert status == 200 and body["latency_s"] == 0.25 and emu.faults.out_of_credits


def test_bad_fault_changes_are_400_and_change_nothing() -> None:
    emu = Emulator()
    assert route(emu, "POST", "/faults", b'{"latency_s": 1, "nope": 1}') == (
        400,
        {"error": "nope: unknown fault"},
    )
    assert route(emu, "POST", "/faults", b"[1]")[0] == 400
    assert route(emu, "POST", "/faults", b"{")[0] == 400
    assert emu.faults.latency_s == 0.0


def test_requests_log_with_limit_and_connection_filter() -> None:
    emu = Emulator()
    emu.requests.extend([entry(1, "a"), entry(2, "b"), entry(1, "c")])
    assert [e["payload_id"] for e in route(emu, "GET", "/requests", b"")[1]] == ["a", "b", "c"]
    assert [e["payload_id"] for e in route(emu, "GET", "/requests?limit=2", b"")[1]] == ["b", "c"]
    assert [e["payload_id"] for e in route(emu, "GET", "/requests?connection_id=1", b"")[1]] == ["a", "c"]
    assert route(emu, "GET", "/requests?limit=x", b"")[0] == 400
    assert route(emu, "POST", "/reset-requests", b"") == (200, {"requests": 0}) and not emu.requests


def test_unknown_path_and_method() -> None:
    emu = Emulator()
    assert route(emu, "GET", "/nope", b"")[0] == 404
    assert route(emu, "DELETE", "/faults", b"")[0] == 405
