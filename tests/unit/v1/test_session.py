"""The pure parts of the v1 session shell: library errors mapped once, close verdicts, headers.

The shell itself (connect, update, read, close over real sockets) is tested against the v1 emulator.
"""

from __future__ import annotations

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Close
from websockets.http11 import Response

from bridge.errors import ConnectionLost
from bridge.upstream.v1.protocol import (
    CloseReason,
    CloseVerdict,
    Endpoint,
    HandshakeVerdict,
    ServerError,
    SessionClosed,
    classify_error,
)
from bridge.upstream.v1.session import (
    API_KEY_HEADER,
    ConnectFailed,
    HandshakeRefused,
    connect_headers,
    map_connect_error,
    session_ended,
)

KEY = "sk-very-secret-key"


def status(code: int) -> InvalidStatus:
    return InvalidStatus(Response(code, "x", Headers(), b'{"message": "no"}'))


@pytest.mark.parametrize(
    ("code", "verdict", "retriable"),
    [
        (401, HandshakeVerdict.KEY_REFUSED, True),
        (403, HandshakeVerdict.KEY_REFUSED, True),
        (429, HandshakeVerdict.TRANSIENT, True),
        (503, HandshakeVerdict.TRANSIENT, True),
        (404, HandshakeVerdict.FINAL, False),
    ],
)
def test_refused_upgrades_become_handshake_refused_with_the_verdict(
    code: int, verdict: HandshakeVerdict, retriable: bool
) -> None:
    err = map_connect_error(status(code))
    assert isinstance(err, HandshakeRefused)
    assert (err.status, err.verdict, err.retriable) == (code, verdict, retriable)
    assert str(code) in str(err)


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError(),
        ConnectionRefusedError(111, "Connection refused"),
        OSError(101, "Network is unreachable"),
        InvalidHandshake("bad upgrade"),
        ConnectionClosedError(Close(1011, "boom"), None),
        RuntimeError("odd"),
    ],
)
def test_network_failures_become_connect_failed(exc: BaseException) -> None:
    err = map_connect_error(exc)
    assert isinstance(err, ConnectFailed) and isinstance(err, ConnectionLost)
    assert err.retriable


def test_a_bad_url_is_final() -> None:
    err = map_connect_error(InvalidURI("ws//nope", "no scheme"))
    assert isinstance(err, HandshakeRefused) and err.verdict is HandshakeVerdict.FINAL


def test_the_key_travels_only_as_a_header() -> None:
    assert connect_headers(KEY) == {API_KEY_HEADER: KEY}
    for exc in (status(401), TimeoutError(), OSError(1, "x")):
        assert KEY not in str(map_connect_error(exc))


def _closed(reason: CloseReason) -> SessionClosed:
    return SessionClosed("s", reason, str(reason), None, None)


def test_session_ended_verdicts() -> None:
    assert (
        session_ended(Close(1000, ""), _closed(CloseReason.CLIENT_REQUEST), None).verdict is CloseVerdict.DONE
    )
    shutdown = session_ended(Close(1000, "bye"), _closed(CloseReason.SERVER_SHUTDOWN), None)
    assert (shutdown.close_code, shutdown.close_reason, shutdown.verdict) == (
        1000,
        "bye",
        CloseVerdict.RECONNECT,
    )
    lost = session_ended(None, None, None)
    assert (lost.close_code, lost.verdict) == (None, CloseVerdict.RECONNECT)
    config = ServerError(
        "config_invalid", "m", False, *classify_error(Endpoint.AUDIO, "config_invalid", False)
    )
    assert session_ended(Close(1008, ""), _closed(CloseReason.ERROR), config).verdict is CloseVerdict.FINAL
    assert session_ended(Close(1002, ""), None, None).verdict is CloseVerdict.FINAL
