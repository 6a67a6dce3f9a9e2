"""The outage machines: an upstream refusing the account as a whole pauses consumption and is probed;
a broker failing beyond a threshold makes the bridge unready; a failure that repeats is reported once,
then summarised.

    healthy ──outage(reason)──▶ out (reason) ──recovered(evidence that ends it)──▶ healthy

Refused keys and an unreachable upstream are probed by the adapter itself (its reconnects) and end when
a session opens. Out of credits is probed by the core, one payload at a time on a jittered backoff, and
ends when a payload is answered. While out, nothing else is dispatched and nothing becomes an error
outcome. Pure: ``now`` and the randomness are passed in.

:class:`BrokerHealth`: fetch, produce or commit failing for longer than a threshold is a reason in words
for ``/readyz`` (503). :class:`Recurring`: one report when a failure begins, at most one summary per
period while it goes on (how many times, the latest words), one when it ends: eight sessions retrying an
unreachable Hume, or a start-up waiting for Kafka, cost a line now and then instead of a line per attempt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from bridge.core.backoff import Backoff
from bridge.core.model import Evidence, OutageReason

ENDED_BY: dict[Evidence, frozenset[OutageReason]] = {
    Evidence.CONNECTED: frozenset({OutageReason.KEY_REFUSED, OutageReason.UNREACHABLE}),
    Evidence.ANSWERED: frozenset({OutageReason.OUT_OF_CREDITS}),
}
PROBED_BY_CORE = frozenset({OutageReason.OUT_OF_CREDITS})


class OutageMachine:
    def __init__(self, probe_backoff: Backoff, rnd: random.Random) -> None:
        self.probe_backoff = probe_backoff
        self.rnd = rnd
        self.reason: OutageReason | None = None
        self.detail = ""
        self.probes = 0
        self.next_probe = 0.0

    def begin(self, reason: OutageReason, detail: str, now: float) -> bool:
        """Enter (or switch to) an outage; False when already in it."""
        if self.reason == reason:
            self.detail = detail  # the latest words for the same outage
            return False
        self.reason, self.detail = reason, detail
        self.probes = 0
        self.next_probe = now + self.probe_backoff.delay(0, self.rnd)
        return True

    def recovered(self, evidence: Evidence) -> OutageReason | None:
        """Leave the outage if ``evidence`` ends it; returns the reason that ended."""
        reason = self.reason
        if reason is None or reason not in ENDED_BY[evidence]:
            return None
        self.reason, self.detail = None, ""
        return reason

    def dispatch_limit(self, now: float) -> int | None:
        """How many records may be dispatched now: None for no limit, 0 for none, 1 for a probe."""
        if self.reason is None:
            return None
        if self.reason in PROBED_BY_CORE and now >= self.next_probe:
            return 1
        return 0

    def probe_sent(self, now: float) -> None:
        self.next_probe = now + self.probe_backoff.delay(self.probes, self.rnd)
        self.probes += 1

    def wake_at(self) -> float | None:
        """When the dispatcher must look again for a probe, if the core probes this outage."""
        return self.next_probe if self.reason in PROBED_BY_CORE else None


class KafkaOp(StrEnum):
    FETCH = "fetch"
    PRODUCE = "produce"
    COMMIT = "commit"


class BrokerHealth:
    """Which broker operations have failed without a success in between, since when, and why."""

    def __init__(self, threshold_s: float) -> None:
        self.threshold_s = threshold_s
        self._failing: dict[KafkaOp, tuple[float, str]] = {}

    def failed(self, op: KafkaOp, detail: str, now: float) -> None:
        since = self._failing.get(op, (now, ""))[0]
        self._failing[op] = (since, detail)

    def ok(self, op: KafkaOp) -> None:
        self._failing.pop(op, None)

    def problems(self, now: float) -> list[str]:
        """Operations failing for longer than the threshold, in words."""
        return [
            f"Kafka {op} failing for {now - since:.0f} s: {detail}"
            for op, (since, detail) in sorted(self._failing.items())
            if now - since >= self.threshold_s
        ]


class Phase(StrEnum):
    BEGAN = "began"
    CONTINUES = "continues"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Report:
    phase: Phase
    detail: str  # the latest words for the failure
    for_s: float  # how long it has lasted
    attempts: int  # failures since the previous report (ENDED: in all)


class Recurring:
    """One failure that repeats (the same thing failing again and again, from one or many tasks)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.since: float | None = None
        self.detail = ""
        self._reported_at = 0.0
        self._attempts = 0
        self._total = 0

    @property
    def active(self) -> bool:
        return self.since is not None

    def failed(self, detail: str, now: float) -> Report | None:
        """A failure: reported when it begins, summarised when a period has passed, else only counted."""
        self.detail = detail
        self._attempts += 1
        self._total += 1
        if self.since is None:
            self.since = self._reported_at = now
            self._attempts = 0
            return Report(Phase.BEGAN, detail, 0.0, 1)
        return self.due(now)

    def due(self, now: float) -> Report | None:
        """The summary, when one is due (call from a timer too: a failure that stops being retried, or
        is retried rarely, is still summarised)."""
        if self.since is None or now - self._reported_at < self.every_s:
            return None
        self._reported_at = now
        attempts, self._attempts = self._attempts, 0
        return Report(Phase.CONTINUES, self.detail, now - self.since, attempts)

    def ok(self, now: float) -> Report | None:
        """It works again: the end of the failure, if one was going on."""
        if self.since is None:
            return None
        report = Report(Phase.ENDED, self.detail, now - self.since, self._total)
        self.since, self._attempts, self._total = None, 0, 0
        return report
