"""Connection failures in words a person can act on, mapped once where a library error enters the bridge.

The Kafka source and sink and every upstream adapter (v0, v1) call :func:`describe_connect` with the
exception their client raised and the address it was connecting to; they log, count and show in ``/readyz``
the resulting :class:`Failure`, never the exception's class name. The ``kind`` decides what happens next
(an adapter maps :attr:`FailureKind.KEY_REFUSED` to an outage of the key, the network kinds to
unreachable, the rest to a transient failure); the ``text`` says what failed and where::

    DNS lookup of api.hume.ai failed (Name or service not known)
    connection refused by 127.0.0.1:9092
    TLS handshake with api.hume.ai failed (certificate verify failed: self-signed certificate)
    HTTP 401 from Hume: check HUME_API_KEY
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from enum import StrEnum


class FailureKind(StrEnum):
    DNS = "dns"  # the host name does not resolve
    REFUSED = "refused"  # nothing listens at the address
    TIMEOUT = "timeout"  # no answer within the deadline
    TLS = "tls"  # the TLS handshake failed (certificate, protocol)
    NETWORK = "network"  # another socket error (unreachable network, reset)
    KEY_REFUSED = "key_refused"  # HTTP 401/403: the credentials are refused
    HTTP = "http"  # another HTTP status at the handshake (429, 5xx)
    PROTOCOL = "protocol"  # the peer answered but not in the expected protocol

    @property
    def network(self) -> bool:
        """The address cannot be reached at all (as opposed to reached and refusing)."""
        return self in (FailureKind.DNS, FailureKind.REFUSED, FailureKind.TIMEOUT, FailureKind.NETWORK)


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    text: str

    def __str__(self) -> str:
        return self.text


HTTP_ADVICE = {
    401: "check HUME_API_KEY",
    403: "check HUME_API_KEY and the account's access",
    429: "too many handshakes for the account; lower BRIDGE_HANDSHAKE_RATE_PER_S or BRIDGE_POOL_SIZE",
}


def describe_http(status: int, service: str = "Hume") -> Failure:
    """An HTTP status answered to a handshake."""
    kind = FailureKind.KEY_REFUSED if status in (401, 403) else FailureKind.HTTP
    advice = HTTP_ADVICE.get(status) or (f"{service} is failing" if status >= 500 else "unexpected status")
    return Failure(kind, f"HTTP {status} from {service}: {advice}")


def describe_connect(
    exc: BaseException, host: str, port: int | None, timeout_s: float | None = None
) -> Failure:
    """What ``exc``, raised while connecting to ``host:port``, means."""
    where = f"{host}:{port}" if port is not None else host
    if isinstance(exc, socket.gaierror):
        return Failure(FailureKind.DNS, f"DNS lookup of {host} failed ({exc.strerror or exc})")
    if isinstance(exc, ConnectionRefusedError):
        return Failure(FailureKind.REFUSED, f"connection refused by {where}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        return Failure(
            FailureKind.TLS, f"TLS handshake with {host} failed (certificate verify failed: {reason})"
        )
    if isinstance(exc, ssl.SSLError):
        return Failure(FailureKind.TLS, f"TLS handshake with {host} failed ({exc.reason or exc})")
    if isinstance(exc, TimeoutError):
        within = f" within {timeout_s:g} s" if timeout_s is not None else ""
        return Failure(FailureKind.TIMEOUT, f"no answer from {where}{within}")
    if isinstance(exc, OSError):
        return Failure(FailureKind.NETWORK, f"cannot connect to {where} ({exc.strerror or exc})")
    return Failure(FailureKind.PROTOCOL, f"{where} did not complete the handshake ({exc})")


def split_address(address: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``, or a bare host) as a pair."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default_port
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and host:
        return host, int(port)
    return address, default_port


async def probe_tcp(address: str, default_port: int, timeout_s: float) -> Failure | None:
    """Why a TCP connection to ``address`` fails, or None when it opens (then closed at once).

    For clients that say only that they could not connect (aiokafka: "Unable to bootstrap"), the bridge
    asks the network itself once, to name the cause."""
    host, port = split_address(address, default_port)
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError) as exc:
        return describe_connect(exc, host, port, timeout_s)
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        pass
    return None
