"""The seam between the core and an upstream API. v0 and v1 each implement :class:`Upstream`; the core
implements :class:`UpstreamEvents` and hears of the upstream only through it, in its own vocabulary
(:mod:`bridge.core.model`). No protocol dict crosses this seam.

The contract, for any adapter:

- ``prepare`` shapes a decoded record for the API or raises :class:`~bridge.errors.MediaError` with a
  precise code: the API's limits, models and vocabulary live in the adapter, not in the core.
- The core hands work over with ``send`` only on a lane ``lanes()`` offered with free capacity, and per
  stream in order, at most ``window`` records of one stream unsettled at a time.
- The adapter reports, for each stream, in stream order: ``produced`` for every output (any number per
  record, an output may cover several records), then ``settled`` up to a record once no more outputs
  will come for it and everything before it; ``lost`` for work that must be sent again (in order, on a
  new lane); ``outage_began`` and ``recovered`` for refusals of the account as a whole. It reports every
  output for a record *before* it reports that record settled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from bridge.core.decode import Decoded
from bridge.core.model import (
    Dispatch,
    ErrorInfo,
    Evidence,
    LaneId,
    LossReason,
    OutageReason,
    Output,
    Prepared,
    Work,
)


class UpstreamEvents(Protocol):
    """What an adapter tells the core. Called on the event loop, never concurrently."""

    def lane_up(self, lane: LaneId) -> None: ...

    def lane_down(self, lane: LaneId) -> None: ...

    def produced(self, output: Output) -> None: ...

    def settled(self, last: Work) -> None:
        """Every record of ``last``'s stream handed over, up to and including ``last``, is settled."""

    def lost(self, works: Sequence[Work], reason: LossReason, error: ErrorInfo) -> None: ...

    def outage_began(self, reason: OutageReason, detail: str) -> None:
        """The account as a whole cannot be served. ``detail`` says what failed in words a person can act
        on, as :mod:`bridge.failures` puts them ("HTTP 401 from Hume: check HUME_API_KEY", "DNS lookup of
        api.hume.ai failed (…)"); the core logs it once per outage, summarises it while the outage lasts and
        shows it in ``/readyz``. Call it again with new words as often as it fails: only the words change."""

    def recovered(self, evidence: Evidence) -> None: ...


class Upstream(Protocol):
    """An upstream API as the core drives it."""

    window: int  # records of one stream that may be unsettled at the adapter at once

    def prepare(self, record: Decoded) -> Prepared: ...

    def lanes(self) -> dict[LaneId, int]:
        """Lanes usable now, with their free capacity."""

    def usable(self) -> int:
        """How many lanes (sessions) could carry work now; zero makes the bridge unready."""

    def send(self, dispatch: Dispatch, now: float) -> None: ...

    def drain(self) -> None:
        """Shutting down: stop feeding, and ask for the results of what was sent (v1: session.close)."""

    def release(self, tps: Iterable[tuple[str, int]]) -> None:
        """These partitions are being revoked: as :meth:`drain`, for their streams only."""

    def released(self, tps: Iterable[tuple[str, int]]) -> bool:
        """After :meth:`release`: True once nothing more of these partitions will settle (the records it
        was not fed wait for the next owner), as :meth:`drained` for their streams only."""

    def drained(self) -> bool:
        """After :meth:`drain`: True once nothing more will settle (the rest waits for the next owner)."""

    async def run(self) -> None:
        """Own the sessions until :meth:`close`."""

    async def close(self) -> None: ...
