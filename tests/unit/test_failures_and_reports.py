"""Connection failures in words, broker health for readiness, and failures reported once then summarised."""

from __future__ import annotations

import socket
import ssl

from bridge.core.outage import BrokerHealth, KafkaOp, Phase, Recurring
from bridge.failures import FailureKind, describe_connect, describe_http, split_address


def test_connect_failures_name_the_host_and_the_cause() -> None:
    """Each library error becomes one sentence naming where and what, never an exception's class name."""
    dns = describe_connect(socket.gaierror(-2, "Name or service not known"), "api.hume.ai", 443)
    assert (dns.kind, dns.text) == (
        FailureKind.DNS,
        "DNS lookup of api.hume.ai failed (Name or service not known)",
    )
    refused = describe_connect(ConnectionRefusedError(111, "Connection refused"), "127.0.0.1", 9092)
    assert (refused.kind, refused.text) == (FailureKind.REFUSED, "connection refused by 127.0.0.1:9092")
    cert = ssl.SSLCertVerificationError(1, "x")
    cert.verify_message = "self-signed certificate"
    tls = describe_connect(cert, "api.hume.ai", 443)
    assert tls.kind is FailureKind.TLS
    assert (
        tls.text
        == "TLS handshake with api.hume.ai failed (certificate verify failed: self-signed certificate)"
    )
    slow = describe_connect(TimeoutError(), "10.0.0.1", 443, 10.0)
    assert slow.text == "no answer from 10.0.0.1:443 within 10 s" and slow.kind.network
    assert "gaierror" not in dns.text and "Error" not in refused.text


def test_http_refusals_say_what_to_check() -> None:
    """401 and 403 are the key's fault and say which variable to check; 429 and 5xx are transient."""
    assert describe_http(401).text == "HTTP 401 from Hume: check HUME_API_KEY"
    assert describe_http(401).kind is FailureKind.KEY_REFUSED
    assert describe_http(403).kind is FailureKind.KEY_REFUSED
    assert (
        describe_http(429).kind is FailureKind.HTTP
        and "BRIDGE_HANDSHAKE_RATE_PER_S" in describe_http(429).text
    )
    assert describe_http(503).text == "HTTP 503 from Hume: Hume is failing"


def test_split_address_reads_host_port_forms() -> None:
    assert split_address("broker-1.kafka:9093", 9092) == ("broker-1.kafka", 9093)
    assert split_address("broker", 9092) == ("broker", 9092)
    assert split_address("[::1]:19092", 9092) == ("::1", 19092)


def test_broker_health_names_operations_failing_beyond_the_threshold() -> None:
    """A failure shorter than the threshold is no reason; a longer one is, in words; a success clears it."""
    health = BrokerHealth(threshold_s=10)
    health.failed(KafkaOp.COMMIT, "no answer within 5 s", now=100)
    assert health.problems(105) == []
    health.failed(KafkaOp.COMMIT, "connection refused by b:9092", now=108)
    assert health.problems(111) == ["Kafka commit failing for 11 s: connection refused by b:9092"]
    health.failed(KafkaOp.FETCH, "no fetch response", now=100)
    assert [p.split(" failing")[0] for p in health.problems(111)] == ["Kafka commit", "Kafka fetch"]
    health.ok(KafkaOp.COMMIT)
    health.ok(KafkaOp.FETCH)
    assert health.problems(200) == []


def test_a_repeating_failure_is_reported_once_then_summarised_then_ended() -> None:
    """Eight sessions failing every second for a minute: one line when it begins, one summary per period
    with the count and the latest words, one line when it ends."""
    rec = Recurring(every_s=30)
    reports = []
    for second in range(60):
        for _session in range(8):
            report = rec.failed(f"connection refused by h:{second}", float(second))
            if report is not None:
                reports.append(report)
        timer = rec.due(second + 0.5)
        if timer is not None:
            reports.append(timer)
    assert [r.phase for r in reports] == [Phase.BEGAN, Phase.CONTINUES]
    assert reports[1].attempts == 30 * 8 and reports[1].for_s == 30  # 239 after the first, one at 30 s
    assert reports[1].detail == "connection refused by h:30"
    end = rec.ok(61)
    assert end is not None and end.phase is Phase.ENDED and end.attempts == 480 and end.for_s == 61
    assert rec.ok(62) is None and not rec.active


def test_a_summary_comes_from_the_timer_when_no_new_failure_does() -> None:
    rec = Recurring(every_s=5)
    assert rec.due(100) is None
    assert rec.failed("x", 0) is not None
    assert rec.due(4) is None
    report = rec.due(5)
    assert report is not None and report.phase is Phase.CONTINUES and report.attempts == 0
