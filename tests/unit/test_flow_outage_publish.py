"""The pure decisions app.py carries out: flow control, the outage machine, the publish retry policy."""

from __future__ import annotations

import random

from bridge.core import publish
from bridge.core.backoff import Backoff
from bridge.core.flow import FlowChange, FlowControl
from bridge.core.model import ErrorInfo, Evidence, OutageReason, Output, Prepared, Source, Work
from bridge.core.outage import OutageMachine
from bridge.errors import Code, PublishRefused, PublishRetriable


def test_flow_pauses_at_either_cap_and_resumes_only_below_both_low_marks() -> None:
    """Hysteresis: pause at the cap, stay paused until records and bytes are both at half."""
    flow = FlowControl(max_records=4, max_bytes=1000, resume_ratio=0.5)
    for _ in range(3):
        flow.admit(10)
    assert flow.update() is None
    flow.admit(10)
    assert flow.update() is FlowChange.PAUSED
    assert flow.update() is None and flow.paused
    flow.release(10)
    assert flow.update() is None  # 3 records: above the low mark of 2
    flow.release(10)
    assert flow.update() is FlowChange.RESUMED
    flow.admit(990)
    assert flow.update() is FlowChange.PAUSED  # the byte cap alone
    assert flow.want_paused(outage=False, stopping=False)
    flow.release(990)
    flow.update()
    assert not flow.want_paused(outage=False, stopping=False)
    assert flow.want_paused(outage=True, stopping=False) and flow.want_paused(outage=False, stopping=True)


def test_outage_blocks_dispatch_and_only_its_own_evidence_ends_it() -> None:
    """Refused keys stop dispatch until a session opens; an answer does not end them."""
    machine = OutageMachine(Backoff(1.0, 8.0), random.Random(0))
    assert machine.dispatch_limit(0.0) is None
    assert machine.begin(OutageReason.KEY_REFUSED, "HTTP 401", 0.0)
    assert not machine.begin(OutageReason.KEY_REFUSED, "HTTP 401", 1.0)
    assert machine.dispatch_limit(100.0) == 0 and machine.wake_at() is None
    assert machine.recovered(Evidence.ANSWERED) is None
    assert machine.recovered(Evidence.CONNECTED) is OutageReason.KEY_REFUSED
    assert machine.reason is None


def test_out_of_credits_is_probed_one_payload_at_a_time_with_growing_backoff() -> None:
    """While out of credits, one probe goes out when due, the next one later; an answer ends it."""
    machine = OutageMachine(Backoff(1.0, 8.0), random.Random(0))
    machine.begin(OutageReason.OUT_OF_CREDITS, "E0300", 0.0)
    first = machine.wake_at()
    assert first is not None and 0.5 <= first <= 1.0
    assert machine.dispatch_limit(first - 0.01) == 0
    assert machine.dispatch_limit(first) == 1
    machine.probe_sent(first)
    second = machine.wake_at()
    assert second is not None and second - first >= 0.5
    assert machine.dispatch_limit(first) == 0
    assert machine.recovered(Evidence.CONNECTED) is None
    assert machine.recovered(Evidence.ANSWERED) is OutageReason.OUT_OF_CREDITS


def _output() -> Output:
    w = Work(Source("m", 0, 1, None), ("m", 0, b"k"), b"k", (), "m/0/1", 1, 0.0, Prepared("p"))
    return Output(w.stream, (w,), {"models": {}})


def test_publish_refused_for_size_is_replaced_by_an_error_naming_it() -> None:
    """Too large: OUTPUT_TOO_LARGE with the size and the limit, not retriable."""
    verdict = publish.decide(
        _output(),
        PublishRefused("MessageSizeTooLargeError", 29_000_000, too_large=True),
        0.0,
        Backoff(0.1, 5.0),
        random.Random(0),
        16_777_216,
    )
    assert isinstance(verdict, publish.Replace)
    assert verdict.error.code == Code.OUTPUT_TOO_LARGE and not verdict.error.retriable
    assert "29000000 bytes" in verdict.error.message and "16777216" in verdict.error.message


def test_transient_publish_failures_back_off_per_output_and_a_refused_error_waits_longest() -> None:
    """Each retry of one output waits longer; an error output refused again is not replaced again."""
    output, rnd, backoff = _output(), random.Random(0), Backoff(0.1, 5.0)
    waits = []
    for _ in range(4):
        verdict = publish.decide(output, PublishRetriable("KafkaTimeoutError"), 0.0, backoff, rnd, 1024)
        assert isinstance(verdict, publish.RetryAt)
        waits.append(verdict.at)
    assert waits == sorted(waits) and waits[0] <= 0.1 and waits[-1] >= 0.4
    error = Output(
        output.stream, output.records, error=ErrorInfo(Code.OUTPUT_TOO_LARGE, "x", "bridge", False)
    )
    again = publish.decide(error, PublishRefused("InvalidMessageError", 10), 0.0, backoff, rnd, 1024)
    assert isinstance(again, publish.RetryAt) and again.at >= 2.5


def test_an_outage_that_goes_on_keeps_the_latest_words() -> None:
    """The same outage reported again is not a new outage, but its words follow what fails now."""
    machine = OutageMachine(Backoff(1.0, 60.0), random.Random(1))
    assert machine.begin(OutageReason.UNREACHABLE, "DNS lookup of api.hume.ai failed (x)", 0.0)
    assert not machine.begin(OutageReason.UNREACHABLE, "connection refused by api.hume.ai:443", 5.0)
    assert machine.detail == "connection refused by api.hume.ai:443"
    assert machine.recovered(Evidence.CONNECTED) is OutageReason.UNREACHABLE and machine.detail == ""
