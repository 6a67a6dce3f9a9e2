"""The embedded broker for chaos scenarios: Tansu listening on one loopback port and advertising another,
the port of a :class:`~bridge.tools.chaos.proxy.FaultProxy` in front of it, so that every client (the
bridges and the scenario's own Kafka client) reaches it through the proxy after bootstrap. Its process can
be frozen (SIGSTOP) and thawed (SIGCONT)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time

from bridge.tools.embedded import EmbeddedBrokerError, broker_binary, free_port

HOST = "127.0.0.1"


class FreezableBroker:
    def __init__(self, advertised_port: int, startup_timeout_s: float = 20.0) -> None:
        self.port = free_port(HOST)
        self.advertised_port = advertised_port
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    def start(self) -> FreezableBroker:
        listen = f"tcp://{HOST}:{self.port}"
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "error")
        self.proc = subprocess.Popen(
            [
                broker_binary(),
                "broker",
                "--listener-url",
                listen,
                "--advertised-listener-url",
                f"tcp://{HOST}:{self.advertised_port}",
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
            if self.proc.poll() is not None:
                raise EmbeddedBrokerError(f"the embedded broker exited with code {self.proc.returncode}")
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise EmbeddedBrokerError(f"the embedded broker did not listen on {listen}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def freeze(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self.frozen = False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.frozen:
                os.kill(proc.pid, signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
