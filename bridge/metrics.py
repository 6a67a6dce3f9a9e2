"""Every Prometheus metric the bridge exports, declared in one place.

Seconds and bytes are base units; histograms, never summaries; label values come only from small fixed
sets (outcome kinds, Hume codes, reasons, session states, topic/partition) and never from stream keys.
The dashboard (deploy/grafana) and the alert rules (deploy/k8s) reference these names; a test scrapes a
running bridge and checks that every name they use is exported.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Hume round trips are tens of milliseconds to a few seconds (video and long audio are slower).
REQUEST_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
# Consumed -> outcome acknowledged includes queueing behind earlier records of the same stream.
PROCESSING_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# v0 records end as a prediction or an error; v1 records as measured (covered by a published measurement),
# silent (settled with no speech or no face) or error.
OUTCOMES = ("prediction", "error", "measured", "silent")
V1_ENDPOINTS = ("audio", "video")
V1_MODES = ("realtime", "file")
# Pacing lag: how late a frame left against its real-time schedule (the target is p99 under 20 ms).
PACING_LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Settlement: a record's media sent to the record settled (Hume measures an utterance when it ends).
SETTLEMENT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
SESSION_STATES = ("connecting", "idle", "busy", "backoff", "closed")
PUBLISH_FAILURES = ("retriable", "refused")
RECONNECT_REASONS = ("dropped", "idle_timeout", "recycled", "reply_timeout", "handshake_failed", "refused")


class Metrics:
    """The bridge's metrics on their own registry (one per process, or one per test)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.request_seconds = Histogram(
            "hume_bridge_request_seconds",
            "Hume round trip: request sent to reply received.",
            buckets=REQUEST_BUCKETS_S,
            registry=r,
        )
        self.processing_seconds = Histogram(
            "hume_bridge_processing_seconds",
            "Record consumed to its outcome acknowledged by Kafka.",
            buckets=PROCESSING_BUCKETS_S,
            registry=r,
        )
        self.records_total = Counter(
            "hume_bridge_records_total", "Input records by final outcome.", ["outcome"], registry=r
        )
        self.consumed_total = Counter(
            "hume_bridge_consumed_records_total", "Input records consumed from Kafka.", registry=r
        )
        self.consumed_bytes_total = Counter(
            "hume_bridge_consumed_bytes_total", "Bytes of input record values consumed.", registry=r
        )
        self.errors_total = Counter(
            "hume_bridge_error_outcomes_total", "Error outcomes by code.", ["code", "origin"], registry=r
        )
        self.hume_errors_total = Counter(
            "hume_bridge_hume_errors_total", "Error replies from Hume by code.", ["code"], registry=r
        )
        self.warnings_total = Counter(
            "hume_bridge_warnings_total", "Warnings published, by code.", ["code"], registry=r
        )
        self.reconnects_total = Counter(
            "hume_bridge_reconnects_total", "Hume session reconnects by reason.", ["reason"], registry=r
        )
        self.retries_total = Counter(
            "hume_bridge_retries_total",
            "Requests sent again after a failure, by reason.",
            ["reason"],
            registry=r,
        )
        self.sessions = Gauge("hume_bridge_sessions", "Hume sessions by state.", ["state"], registry=r)
        self.inflight_requests = Gauge(
            "hume_bridge_inflight_requests", "Requests sent to Hume and awaiting a reply.", registry=r
        )
        self.consumer_lag = Gauge(
            "hume_bridge_consumer_lag",
            "Records between the committed offset and the partition's high watermark.",
            ["topic", "partition"],
            registry=r,
        )
        self.buffered_records = Gauge(
            "hume_bridge_buffered_records", "Records consumed and not yet committed.", registry=r
        )
        self.buffered_bytes = Gauge(
            "hume_bridge_buffered_bytes", "Value bytes of records consumed and not yet finished.", registry=r
        )
        self.paused_partitions = Gauge(
            "hume_bridge_paused_partitions", "Assigned partitions currently paused.", registry=r
        )
        self.upstream_paused = Gauge(
            "hume_bridge_upstream_paused",
            "1 while consumption is paused for an upstream outage, by reason.",
            ["reason"],
            registry=r,
        )
        self.publish_failures_total = Counter(
            "hume_bridge_publish_failures_total",
            "Output records the broker did not take: retried after a backoff (retriable) or replaced by "
            "an error outcome (refused).",
            ["reason"],
            registry=r,
        )
        for reason in PUBLISH_FAILURES:
            self.publish_failures_total.labels(reason=reason)
        self.commits_total = Counter("hume_bridge_commits_total", "Offset commits sent to Kafka.", registry=r)
        self.commit_failures_total = Counter(
            "hume_bridge_commit_failures_total", "Offset commits that failed.", registry=r
        )
        self.rebalances_total = Counter(
            "hume_bridge_rebalances_total", "Partition assignments and revocations.", ["kind"], registry=r
        )
        self.idempotence_disabled = Gauge(
            "hume_bridge_producer_idempotence_disabled",
            "1 when idempotence was requested as auto and the broker refused producer ids.",
            registry=r,
        )
        self.ready = Gauge("hume_bridge_ready", "1 when /readyz answers 200.", registry=r)
        # Usage: what an operator needs to estimate the Hume bill.
        self.usage_audio_seconds_total = Counter(
            "hume_bridge_usage_audio_seconds_total", "Seconds of audio sent to Hume.", registry=r
        )
        self.usage_images_total = Counter(
            "hume_bridge_usage_images_total", "Images and video payloads sent to Hume.", registry=r
        )
        self.usage_text_characters_total = Counter(
            "hume_bridge_usage_text_characters_total", "Characters of text sent to Hume.", registry=r
        )
        self.usage_requests_total = Counter(
            "hume_bridge_usage_requests_total", "Payloads sent to Hume, by media kind.", ["kind"], registry=r
        )
        self.usage_bytes_sent_total = Counter(
            "hume_bridge_usage_bytes_sent_total", "Bytes of request frames sent to Hume.", registry=r
        )
        # Hume v1 realtime sessions (one per active stream) and the upload lane.
        self.v1_streams_waiting = Gauge(
            "hume_bridge_v1_streams_waiting",
            "Streams with work waiting for a v1 session because BRIDGE_V1_MAX_SESSIONS is reached.",
            registry=r,
        )
        self.v1_frames_sent_total = Counter(
            "hume_bridge_v1_frames_sent_total", "Media frames sent on v1 sessions.", ["endpoint"], registry=r
        )
        self.v1_rate_limited_total = Counter(
            "hume_bridge_v1_rate_limited_total",
            "Frames Hume refused as rate_limited (sent again for audio).",
            ["endpoint"],
            registry=r,
        )
        self.v1_pacing_lag_seconds = Histogram(
            "hume_bridge_v1_pacing_lag_seconds",
            "How late a frame left against its stream's real-time schedule.",
            buckets=PACING_LAG_BUCKETS_S,
            registry=r,
        )
        self.v1_unsettled_audio_seconds = Gauge(
            "hume_bridge_v1_unsettled_audio_seconds",
            "Seconds of audio sent on v1 sessions and not yet settled, per input partition.",
            ["topic", "partition"],
            registry=r,
        )
        self.v1_settlement_seconds = Histogram(
            "hume_bridge_v1_settlement_seconds",
            "A record's media sent to the record settled by Hume's events.",
            buckets=SETTLEMENT_BUCKETS_S,
            registry=r,
        )
        self.usage_seconds_total = Counter(
            "hume_bridge_usage_seconds_total",
            "Seconds Hume meters, by endpoint and mode (a run with media is billed at least 10 s).",
            ["endpoint", "mode"],
            registry=r,
        )
        for endpoint in V1_ENDPOINTS:
            self.v1_frames_sent_total.labels(endpoint=endpoint)
            self.v1_rate_limited_total.labels(endpoint=endpoint)
            for mode in V1_MODES:
                self.usage_seconds_total.labels(endpoint=endpoint, mode=mode)
        # Children used on the per-record path, looked up once (labels() costs a lock and a dict lookup).
        self.records_by_outcome = {o: self.records_total.labels(outcome=o) for o in OUTCOMES}
        self.sessions_by_state = {state: self.sessions.labels(state=state) for state in SESSION_STATES}
        for child in self.sessions_by_state.values():
            child.set(0)
        self.requests_by_kind = {
            kind: self.usage_requests_total.labels(kind=kind)
            for kind in ("audio", "video", "image", "text", "facemesh")
        }
        for reason in RECONNECT_REASONS:
            self.reconnects_total.labels(reason=reason)
