"""The v0 adapter speaks the core's vocabulary: replies become outputs, settlements, losses and outages."""

from __future__ import annotations

from collections.abc import Sequence

from bridge.config import HumeConfig, RetryConfig
from bridge.core.model import (
    ErrorInfo,
    Evidence,
    LaneId,
    LossReason,
    OutageReason,
    Output,
    Prepared,
    Source,
    Work,
)
from bridge.errors import ConnectionLost, SessionClosed
from bridge.metrics import Metrics
from bridge.upstream.v0.adapter import V0Upstream


class Recorder:
    """An UpstreamEvents that writes down what it hears."""

    def __init__(self) -> None:
        self.heard: list[tuple[object, ...]] = []

    def lane_up(self, lane: LaneId) -> None:
        self.heard.append(("up", lane))

    def lane_down(self, lane: LaneId) -> None:
        self.heard.append(("down", lane))

    def produced(self, output: Output) -> None:
        self.heard.append(("produced", output))

    def settled(self, last: Work) -> None:
        self.heard.append(("settled", last))

    def lost(self, works: Sequence[Work], reason: LossReason, error: ErrorInfo) -> None:
        self.heard.append(("lost", tuple(works), reason, error.code))

    def outage_began(self, reason: OutageReason, detail: str) -> None:
        self.heard.append(("outage", reason))

    def recovered(self, evidence: Evidence) -> None:
        self.heard.append(("recovered", evidence))


def adapter() -> tuple[V0Upstream, Recorder]:
    events = Recorder()
    return V0Upstream(HumeConfig(pool_size=2), RetryConfig(), events, Metrics(), clock=lambda: 1.0), events


def work() -> Work:
    return Work(Source("m", 0, 9, None), ("m", 0, b"k"), b"k", (), "m/0/9", 3, 0.0, Prepared("p"))


def test_predictions_are_one_output_covering_the_record_then_its_settlement() -> None:
    """A reply with models and a nested warning: one output with both, then the record settles."""
    up, events = adapter()
    w = work()
    up.reply(0, w, {"payload_id": "m/0/9", "face": {"warning": "No faces detected.", "code": "W0103"}})
    assert [h[0] for h in events.heard] == ["recovered", "produced", "settled"]
    output = events.heard[1][1]
    assert isinstance(output, Output) and output.records == (w,)
    assert output.fields == {"models": {"face": {"warning": "No faces detected.", "code": "W0103"}}}
    assert [x.code for x in output.warnings] == ["W0103"]
    assert events.heard[2] == ("settled", w)


def test_final_hume_error_is_an_error_output_and_transient_one_a_counted_loss() -> None:
    """E02xx settles with an error output; E05xx is lost and counts an attempt."""
    up, events = adapter()
    w = work()
    up.reply(0, w, {"error": "too long", "code": "E0203"})
    output = events.heard[1][1]
    assert isinstance(output, Output) and output.error is not None and output.error.origin == "hume"
    events.heard.clear()
    up.reply(0, w, {"error": "oops", "code": "E0500"})
    assert events.heard == [("lost", (w,), LossReason.HUME_ERROR, "E0500")]


def test_out_of_credits_and_lost_connections_in_the_core_s_words() -> None:
    """E0300 loses the work without an attempt and begins an outage; a session we closed is not counted."""
    up, events = adapter()
    w = work()
    up.reply(0, w, {"error": "no credits", "code": "E0300"})
    assert events.heard == [
        ("lost", (w,), LossReason.OUTAGE, "E0300"),
        ("outage", OutageReason.OUT_OF_CREDITS),
    ]
    events.heard.clear()
    up.lost(1, [w], SessionClosed("recycled"))
    up.lost(1, [w], ConnectionLost("dropped"))
    assert [h[2] for h in events.heard] == [LossReason.CLOSED_BY_US, LossReason.CONNECTION_LOST]
    assert not LossReason.CLOSED_BY_US.counts_attempt and LossReason.CONNECTION_LOST.counts_attempt
