"""Configuration: one frozen dataclass tree, built from the environment in one place.

Every field has a default and its unit in its name. :data:`SETTINGS` is the one table of environment
variables (name, field, parser, meaning); ``run --help``, the README and the ConfigMap are rendered from it.
:func:`load` reads every variable, collects every problem and raises one :class:`~bridge.errors.ConfigError`
naming all of them. Secrets may come from
``NAME`` or from a file named by ``NAME_FILE``; they are held in :class:`Secret`, whose ``repr`` and
``str`` never show the value.
"""

from __future__ import annotations

import difflib
import json
import os
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from bridge.errors import ConfigError

N = TypeVar("N", int, float)

KNOWN_MODELS = ("face", "language", "prosody", "burst", "facemesh")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Secret:
    """A secret value that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class KafkaConfig:
    bootstrap: str = "localhost:9092"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: Secret = field(default_factory=lambda: Secret(""))
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_key_password: Secret = field(default_factory=lambda: Secret(""))
    ssl_check_hostname: bool = True
    idempotence: str = "auto"  # auto | on | off
    group_id: str = "hume-bridge"
    input_topics: tuple[str, ...] = ("hume.media",)
    predictions_topic: str = "hume.predictions"
    errors_topic: str = "hume.errors"
    warnings_topic: str = "hume.warnings"
    fetch_max_records: int = 500
    fetch_max_wait_ms: int = 100  # brokers that hold a fetch until this passes deliver in bursts
    commit_interval_s: float = 1.0
    session_timeout_ms: int = 30_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 300_000
    linger_ms: int = 5
    max_request_bytes: int = 16 * 1024 * 1024  # the largest output record the producer sends
    unhealthy_after_s: float = 15.0  # fetch, produce or commit failing this long: not ready
    auto_offset_reset: str = "earliest"


@dataclass(frozen=True, slots=True)
class HumeConfig:
    api_key: Secret = field(default_factory=lambda: Secret(""))
    url: str = ""  # empty: the API's own (HUME_URLS)
    api: str = "v1"
    pool_size: int = 8
    requests_per_session: int = 1
    connect_timeout_s: float = 10.0
    reply_timeout_s: float = 30.0
    session_max_age_s: float = 50.0  # recycle before Hume's one-minute close
    handshake_rate_per_s: float = 40.0  # below Hume's ~50 handshakes per second per account
    max_frame_bytes: int = 32 * 1024 * 1024
    default_models: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: {
            "audio": {"prosody": {}},
            "video": {"face": {}},
            "image": {"face": {}},
            "text": {"language": {}},
            "facemesh": {"facemesh": {}},
        }
    )
    stream_window_ms: float | None = None
    job_details: bool = False
    audio_affinity_idle_s: float = 30.0


HUME_URLS = {"v1": "https://api.cloud.hume.ai", "v0": "wss://api.hume.ai/v0/stream/models"}


@dataclass(frozen=True, slots=True)
class V1Config:
    """Hume v1 realtime sessions (one per active stream)."""

    max_sessions: int = 200
    measurement_timer_ms: int = 3000
    idle_close_s: float = 10.0
    max_unsettled_s: float = 60.0
    face_threshold: float = 0.9
    face_min_size: int = 60
    pacing_lead_s: float = 0.2
    window_records: int = 1024
    decode_workers: int = 2
    close_timeout_s: float = 10.0
    keepalive_s: float = 5.0


@dataclass(frozen=True, slots=True)
class RetryConfig:
    max_attempts: int = 5
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    outage_probe_initial_s: float = 1.0
    outage_probe_max_s: float = 60.0


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    max_buffered_records: int = 10_000
    max_buffered_bytes: int = 64 * 1024 * 1024
    resume_ratio: float = 0.5  # resume fetching below this fraction of both caps
    max_record_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Config:
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    hume: HumeConfig = field(default_factory=HumeConfig)
    v1: V1Config = field(default_factory=V1Config)
    retry: RetryConfig = field(default_factory=RetryConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    http_host: str = "0.0.0.0"
    http_port: int = 9400
    log_level: str = "INFO"
    shutdown_drain_s: float = 20.0
    revoke_drain_s: float = 10.0


# ---------------------------------------------------------------------------------------------------------
# How a value is read from its variable. Each parser raises _Invalid with what it expected.


class _Invalid(ValueError):
    """A value that does not parse; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class Text:
    def __call__(self, text: str) -> str:
        return text


@dataclass(frozen=True, slots=True)
class SecretText:
    """A secret: from ``NAME`` or from the file named by ``NAME_FILE`` (read by :func:`_read`)."""

    def __call__(self, text: str) -> Secret:
        return Secret(text)


@dataclass(frozen=True, slots=True)
class Choice:
    choices: tuple[str, ...]
    upper: bool = True

    def __call__(self, text: str) -> str:
        value = text.upper() if self.upper else text.lower()
        if value not in self.choices:
            raise _Invalid(f"expected one of {', '.join(self.choices)}, got {value!r}")
        return value


@dataclass(frozen=True, slots=True)
class Integer:
    low: int
    high: int | None = None

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _Invalid(f"expected an integer, got {text!r}") from None
        return _in_range(value, self.low, self.high)


@dataclass(frozen=True, slots=True)
class Number:
    low: float
    high: float | None = None

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _Invalid(f"expected a number, got {text!r}") from None
        return _in_range(value, self.low, self.high)


def _in_range(value: N, low: float, high: float | None) -> N:
    if value < low or (high is not None and value > high) or value != value:
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise _Invalid(f"expected a value {bounds}, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Flag:
    def __call__(self, text: str) -> bool:
        lowered = text.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise _Invalid(f"expected true or false, got {text!r}")


@dataclass(frozen=True, slots=True)
class Topics:
    """Comma-separated topic names (``many``), or exactly one."""

    many: bool = True

    def __call__(self, text: str) -> tuple[str, ...] | str:
        topics = tuple(t.strip() for t in text.split(",") if t.strip())
        if self.many and topics and all(_valid_topic(t) for t in topics):
            return topics
        if not self.many and _valid_topic(text):
            return text
        what = "comma-separated Kafka topic names" if self.many else "one Kafka topic name"
        raise _Invalid(f"expected {what}, got {text!r}")


@dataclass(frozen=True, slots=True)
class Models:
    def __call__(self, text: str) -> dict[str, Any]:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise _Invalid("expected a JSON object of models, got invalid JSON") from None
        problem = models_problem(value)
        if problem:
            raise _Invalid(problem)
        return dict(value)


Parser = Text | SecretText | Choice | Integer | Number | Flag | Topics | Models


def _valid_topic(name: str) -> bool:
    return 0 < len(name) <= 249 and all(c.isalnum() or c in "._-" for c in name)


def models_problem(value: Any) -> str | None:
    """Why ``value`` is not a valid v0 ``models`` object, or None when it is."""
    if not isinstance(value, dict) or not value:
        return "expected a non-empty JSON object mapping model names to their configuration"
    unknown = sorted(k for k in value if k not in KNOWN_MODELS)
    if unknown:
        return f"unknown model(s) {', '.join(unknown)}; known: {', '.join(KNOWN_MODELS)}"
    not_objects = sorted(k for k, v in value.items() if not isinstance(v, dict))
    if not_objects:
        return f"configuration of {', '.join(not_objects)} must be a JSON object"
    return None


# ---------------------------------------------------------------------------------------------------------
# THE settings table. One entry per environment variable; ``run --help``, the README's configuration section
# and deploy/k8s/bridge.env are rendered from it (scripts/sync_settings.py rewrites the last two, and a unit
# test keeps them equal). The default is the dataclass field's default, found by ``path``.


class Group(StrEnum):
    """Sections of the settings, in the order they are shown; the value is the heading."""

    HUME = "Hume"
    KAFKA = "Kafka connection"
    TOPICS = "Consumer group and topics"
    KAFKA_CLIENT = "Kafka client tuning"
    SESSIONS = "Hume sessions"
    REQUESTS = "Requests and default models"
    RETRY = "Retries and backoff"
    LIMITS = "Memory bounds"
    SERVICE = "HTTP endpoint, logs and shutdown"


GROUP_NOTES: dict[Group, str] = {
    Group.HUME: "In Kubernetes the key comes from the Secret hume-bridge-secrets, mounted as a file.",
    Group.KAFKA: "In Kubernetes the SASL credentials and the TLS key password come from the Secret "
    "hume-bridge-secrets.",
    Group.TOPICS: "The four topics must exist before `run` starts (`hume-bridge broker` creates them "
    "locally). The KEDA ScaledObject takes the bootstrap servers and the group from here.",
    Group.KAFKA_CLIENT: "Fetching, commits, group membership and producer batching.",
    Group.SESSIONS: "The pool of WebSocket sessions to Hume, per pod.",
    Group.REQUESTS: "What is asked of Hume when a record does not say (`hume-models`, …).",
    Group.RETRY: "All backoffs are jittered and double up to their maximum.",
    Group.LIMITS: "Above these the bridge pauses its partitions; resources.limits.memory is sized for them.",
    Group.SERVICE: "The Service, the probes and the NetworkPolicy use port 9400; "
    "terminationGracePeriodSeconds (45) stays above the drain deadline.",
}


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: where its value goes, how it is read, and what it means."""

    name: str
    path: str  # field in Config: "http_port", "kafka.bootstrap", "hume.default_models.audio"
    parse: Parser
    meaning: str
    group: Group
    shown_default: str | None = None  # instead of the field's default, e.g. "(required)"
    deploy: str | None = None  # the ConfigMap's value when not the default (an example if unset by default)
    from_secret: bool = False  # set from the Secret, never in the ConfigMap

    @property
    def secret(self) -> bool:
        return isinstance(self.parse, SecretText)

    @property
    def names(self) -> tuple[str, ...]:
        """The variables that set it (a secret also from ``NAME_FILE``)."""
        return (self.name, f"{self.name}_FILE") if self.secret else (self.name,)

    @property
    def default(self) -> Any:
        value: Any = Config()
        for part in self.path.split("."):
            value = value[part] if isinstance(value, Mapping) else getattr(value, part)
        return value

    @property
    def default_text(self) -> str:
        """The default as one would write it in the variable; "" when there is none."""
        if self.shown_default is not None:
            return self.shown_default
        return _show(self.default)


def _show(value: Any) -> str:
    if isinstance(value, Secret):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, Mapping):
        return json.dumps(value)
    return "" if value is None else str(value)


_H, _K, _T, _C = Group.HUME, Group.KAFKA, Group.TOPICS, Group.KAFKA_CLIENT
_S, _Q, _R, _L, _V = Group.SESSIONS, Group.REQUESTS, Group.RETRY, Group.LIMITS, Group.SERVICE


def _models(kind: str, meaning: str) -> Setting:
    return Setting(
        f"BRIDGE_DEFAULT_MODELS_{kind.upper()}", f"hume.default_models.{kind}", Models(), meaning, _Q
    )


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "HUME_API_KEY",
        "hume.api_key",
        SecretText(),
        "Hume API key, sent as X-Hume-Api-Key",
        _H,
        shown_default="(required)",
        from_secret=True,
    ),
    Setting(
        "BRIDGE_HUME_API",
        "hume.api",
        Choice(("v1", "v0"), upper=False),
        "Hume API: v1 (realtime sessions per stream, Hume's live API) or v0 (the retired streaming API)",
        _H,
    ),
    Setting(
        "BRIDGE_HUME_URL",
        "hume.url",
        Text(),
        "Hume endpoint; not set: https://api.cloud.hume.ai for v1 (http(s)://), "
        "wss://api.hume.ai/v0/stream/models for v0 (ws(s)://)",
        _H,
        deploy="https://api.cloud.hume.ai",
    ),
    Setting(
        "BRIDGE_KAFKA_BOOTSTRAP",
        "kafka.bootstrap",
        Text(),
        "bootstrap servers, comma-separated host:port",
        _K,
        deploy="kafka-bootstrap.kafka.svc:9092",
    ),
    Setting(
        "BRIDGE_KAFKA_SECURITY_PROTOCOL",
        "kafka.security_protocol",
        Choice(SECURITY_PROTOCOLS),
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
        _K,
    ),
    Setting(
        "BRIDGE_KAFKA_SASL_MECHANISM",
        "kafka.sasl_mechanism",
        Choice(SASL_MECHANISMS),
        "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
        _K,
    ),
    Setting(
        "BRIDGE_KAFKA_SASL_USERNAME",
        "kafka.sasl_username",
        Text(),
        "SASL user (required with SASL)",
        _K,
        from_secret=True,
    ),
    Setting(
        "BRIDGE_KAFKA_SASL_PASSWORD",
        "kafka.sasl_password",
        SecretText(),
        "SASL password (required with SASL)",
        _K,
        from_secret=True,
    ),
    Setting(
        "BRIDGE_KAFKA_SSL_CAFILE",
        "kafka.ssl_cafile",
        Text(),
        "CA bundle to verify the brokers (default: the system's)",
        _K,
        deploy="/etc/kafka-tls/ca.crt",
    ),
    Setting(
        "BRIDGE_KAFKA_SSL_CERTFILE",
        "kafka.ssl_certfile",
        Text(),
        "client certificate for mutual TLS",
        _K,
        deploy="/etc/kafka-tls/tls.crt",
    ),
    Setting(
        "BRIDGE_KAFKA_SSL_KEYFILE",
        "kafka.ssl_keyfile",
        Text(),
        "client key for mutual TLS",
        _K,
        deploy="/etc/kafka-tls/tls.key",
    ),
    Setting(
        "BRIDGE_KAFKA_SSL_KEY_PASSWORD",
        "kafka.ssl_key_password",
        SecretText(),
        "password of the client key",
        _K,
        from_secret=True,
    ),
    Setting(
        "BRIDGE_KAFKA_SSL_CHECK_HOSTNAME",
        "kafka.ssl_check_hostname",
        Flag(),
        "verify the brokers' host names",
        _K,
    ),
    Setting(
        "BRIDGE_KAFKA_IDEMPOTENCE",
        "kafka.idempotence",
        Choice(("auto", "on", "off"), upper=False),
        "idempotent producer: auto (on, off with a warning when the broker refuses producer ids), on, off",
        _K,
    ),
    Setting("BRIDGE_GROUP_ID", "kafka.group_id", Text(), "consumer group", _T),
    Setting("BRIDGE_INPUT_TOPICS", "kafka.input_topics", Topics(), "input topics, comma-separated", _T),
    Setting(
        "BRIDGE_PREDICTIONS_TOPIC", "kafka.predictions_topic", Topics(many=False), "predictions topic", _T
    ),
    Setting("BRIDGE_ERRORS_TOPIC", "kafka.errors_topic", Topics(many=False), "error outcomes topic", _T),
    Setting("BRIDGE_WARNINGS_TOPIC", "kafka.warnings_topic", Topics(many=False), "warnings topic", _T),
    Setting(
        "BRIDGE_KAFKA_AUTO_OFFSET_RESET",
        "kafka.auto_offset_reset",
        Choice(("earliest", "latest"), upper=False),
        "where a new group starts: earliest or latest",
        _C,
    ),
    Setting(
        "BRIDGE_FETCH_MAX_RECORDS", "kafka.fetch_max_records", Integer(1, 100_000), "records per fetch", _C
    ),
    Setting(
        "BRIDGE_KAFKA_FETCH_MAX_WAIT_MS",
        "kafka.fetch_max_wait_ms",
        Integer(0, 60_000),
        "how long the broker may hold a fetch waiting for data, ms",
        _C,
    ),
    Setting(
        "BRIDGE_COMMIT_INTERVAL_S",
        "kafka.commit_interval_s",
        Number(0.01, 3600),
        "how often commit points are committed, s",
        _C,
    ),
    Setting(
        "BRIDGE_KAFKA_SESSION_TIMEOUT_MS",
        "kafka.session_timeout_ms",
        Integer(1000),
        "group session timeout, ms (a lost member's partitions move after this)",
        _C,
    ),
    Setting(
        "BRIDGE_KAFKA_HEARTBEAT_INTERVAL_MS",
        "kafka.heartbeat_interval_ms",
        Integer(100),
        "group heartbeat interval, ms",
        _C,
    ),
    Setting(
        "BRIDGE_KAFKA_MAX_POLL_INTERVAL_MS",
        "kafka.max_poll_interval_ms",
        Integer(1000),
        "longest pause between fetches before the group drops the member, ms",
        _C,
    ),
    Setting(
        "BRIDGE_KAFKA_LINGER_MS", "kafka.linger_ms", Integer(0, 10_000), "producer batching delay, ms", _C
    ),
    Setting(
        "BRIDGE_KAFKA_MAX_REQUEST_BYTES",
        "kafka.max_request_bytes",
        Integer(1024, 1024 * 1024 * 1024),
        "largest output record the producer sends; a larger outcome becomes OUTPUT_TOO_LARGE",
        _C,
    ),
    Setting(
        "BRIDGE_KAFKA_UNHEALTHY_AFTER_S",
        "kafka.unhealthy_after_s",
        Number(1, 3600),
        "fetch, produce or commit failing this long makes /readyz answer 503 with the reason, s",
        _C,
    ),
    Setting("BRIDGE_POOL_SIZE", "hume.pool_size", Integer(1, 1024), "Hume WebSocket sessions", _S),
    Setting(
        "BRIDGE_REQUESTS_PER_SESSION",
        "hume.requests_per_session",
        Integer(1, 64),
        "requests in flight per session",
        _S,
    ),
    Setting(
        "BRIDGE_CONNECT_TIMEOUT_S", "hume.connect_timeout_s", Number(0.1, 300), "handshake deadline, s", _S
    ),
    Setting(
        "BRIDGE_REPLY_TIMEOUT_S",
        "hume.reply_timeout_s",
        Number(0.1, 600),
        "reply deadline, s; past it the session is reopened and the request retried",
        _S,
    ),
    Setting(
        "BRIDGE_SESSION_MAX_AGE_S",
        "hume.session_max_age_s",
        Number(1, 86_400),
        "recycle sessions after this long, s (before Hume's one-minute close)",
        _S,
    ),
    Setting(
        "BRIDGE_HANDSHAKE_RATE_PER_S",
        "hume.handshake_rate_per_s",
        Number(0.1, 10_000),
        "handshakes per second across the pool (Hume allows ~50 per account)",
        _S,
    ),
    Setting(
        "BRIDGE_MAX_FRAME_BYTES", "hume.max_frame_bytes", Integer(1024), "largest reply frame accepted", _S
    ),
    Setting(
        "BRIDGE_AUDIO_AFFINITY_IDLE_S",
        "hume.audio_affinity_idle_s",
        Number(0, 86_400),
        "how long an idle audio stream keeps its session, s",
        _S,
    ),
    Setting(
        "BRIDGE_V1_MAX_SESSIONS",
        "v1.max_sessions",
        Integer(1, 100_000),
        "v1: concurrent realtime sessions per pod (one per active stream); streams beyond wait, oldest first",
        _S,
    ),
    Setting(
        "BRIDGE_V1_IDLE_CLOSE_S",
        "v1.idle_close_s",
        Number(0.05, 3600),
        "v1: close a stream's session after this long without records, s",
        _S,
    ),
    Setting(
        "BRIDGE_V1_MAX_UNSETTLED_S",
        "v1.max_unsettled_s",
        Number(1, 3600),
        "v1: close and continue on a new session when a stream's unsettled audio passes this, s",
        _S,
    ),
    Setting(
        "BRIDGE_V1_PACING_LEAD_S",
        "v1.pacing_lead_s",
        Number(0.1, 600),
        "v1: how far ahead of real time a stream's audio may be sent, s (at least one 100 ms frame)",
        _S,
    ),
    Setting(
        "BRIDGE_V1_WINDOW_RECORDS",
        "v1.window_records",
        Integer(1, 1_000_000),
        "v1: records of one stream at the adapter and not yet settled",
        _S,
    ),
    Setting(
        "BRIDGE_V1_DECODE_WORKERS",
        "v1.decode_workers",
        Integer(1, 256),
        "v1: threads decoding media to v1 form (off the event loop)",
        _S,
    ),
    Setting(
        "BRIDGE_V1_CLOSE_TIMEOUT_S",
        "v1.close_timeout_s",
        Number(0.1, 600),
        "v1: how long a closing session may take to deliver its due results, s",
        _S,
    ),
    Setting(
        "BRIDGE_V1_KEEPALIVE_S",
        "v1.keepalive_s",
        Number(0.1, 120),
        "v1: a WebSocket ping every this often; a session whose pong is this late is lost (a silent "
        "network is found within about three times this), s",
        _S,
    ),
    Setting(
        "BRIDGE_V1_MEASUREMENT_TIMER_MS",
        "v1.measurement_timer_ms",
        Integer(3000, 10_000),
        "v1: ms of speech between interval measurements, 3000-10000 (per stream: hume-measurement-timer-ms)",
        _Q,
    ),
    Setting(
        "BRIDGE_V1_FACE_THRESHOLD",
        "v1.face_threshold",
        Number(0.0, 1.0),
        "v1: face detection confidence threshold, 0-1",
        _Q,
    ),
    Setting(
        "BRIDGE_V1_FACE_MIN_SIZE",
        "v1.face_min_size",
        Integer(1, 100_000),
        "v1: smallest face measured (shorter side of its box), px",
        _Q,
    ),
    _models("audio", "models for audio when a record has no hume-models header"),
    _models("video", "models for video"),
    _models("image", "models for images"),
    _models("text", "models for text"),
    _models("facemesh", "models for facemesh landmarks"),
    Setting(
        "BRIDGE_STREAM_WINDOW_MS",
        "hume.stream_window_ms",
        Number(500, 10_000),
        "default stream_window_ms for audio, 500-10000 (not set: Hume's 5000)",
        _Q,
        shown_default="",
        deploy="5000",
    ),
    Setting("BRIDGE_JOB_DETAILS", "hume.job_details", Flag(), "ask Hume for job_details", _Q),
    Setting(
        "BRIDGE_MAX_ATTEMPTS",
        "retry.max_attempts",
        Integer(1, 100),
        "requests per record before RETRIES_EXHAUSTED",
        _R,
    ),
    Setting(
        "BRIDGE_RETRY_BACKOFF_INITIAL_S",
        "retry.backoff_initial_s",
        Number(0.0, 3600),
        "first retry delay, s",
        _R,
    ),
    Setting(
        "BRIDGE_RETRY_BACKOFF_MAX_S", "retry.backoff_max_s", Number(0.0, 3600), "longest retry delay, s", _R
    ),
    Setting(
        "BRIDGE_RECONNECT_BACKOFF_INITIAL_S",
        "retry.reconnect_initial_s",
        Number(0.0, 3600),
        "first reconnect delay, s",
        _R,
    ),
    Setting(
        "BRIDGE_RECONNECT_BACKOFF_MAX_S",
        "retry.reconnect_max_s",
        Number(0.0, 3600),
        "longest reconnect delay, s",
        _R,
    ),
    Setting(
        "BRIDGE_OUTAGE_PROBE_INITIAL_S",
        "retry.outage_probe_initial_s",
        Number(0.01, 3600),
        "first probe delay during an upstream outage, s",
        _R,
    ),
    Setting(
        "BRIDGE_OUTAGE_PROBE_MAX_S",
        "retry.outage_probe_max_s",
        Number(0.01, 86_400),
        "longest probe delay during an upstream outage, s",
        _R,
    ),
    Setting(
        "BRIDGE_MAX_BUFFERED_RECORDS",
        "limits.max_buffered_records",
        Integer(1),
        "pause fetching at this many unfinished records",
        _L,
    ),
    Setting(
        "BRIDGE_MAX_BUFFERED_BYTES",
        "limits.max_buffered_bytes",
        Integer(1024),
        "... or at this many value bytes",
        _L,
    ),
    Setting(
        "BRIDGE_RESUME_RATIO",
        "limits.resume_ratio",
        Number(0.0, 1.0),
        "resume fetching below this fraction of both caps",
        _L,
    ),
    Setting(
        "BRIDGE_MAX_RECORD_BYTES",
        "limits.max_record_bytes",
        Integer(1),
        "larger values become RECORD_TOO_LARGE error outcomes",
        _L,
    ),
    Setting("BRIDGE_HTTP_HOST", "http_host", Text(), "interface of /metrics, /healthz and /readyz", _V),
    Setting(
        "BRIDGE_HTTP_PORT", "http_port", Integer(0, 65_535), "port of /metrics, /healthz and /readyz", _V
    ),
    Setting(
        "BRIDGE_LOG_LEVEL",
        "log_level",
        Choice(LOG_LEVELS),
        "DEBUG, INFO, WARNING or ERROR; DEBUG adds per-record and per-commit events",
        _V,
    ),
    Setting(
        "BRIDGE_SHUTDOWN_DRAIN_S",
        "shutdown_drain_s",
        Number(0.0, 3600),
        "on SIGTERM, how long in-flight work may finish, s",
        _V,
    ),
    Setting(
        "BRIDGE_REVOKE_DRAIN_S",
        "revoke_drain_s",
        Number(0.0, 3600),
        "how long a revoked partition's in-flight work may finish, s",
        _V,
    ),
)

# Variables with the prefixes below that are not settings of ``run`` but are read elsewhere (tests, bench).
OTHER_VARIABLES = frozenset({"BRIDGE_TEST_KAFKA_BOOTSTRAP", "BRIDGE_BENCH_LOG_DIR"})
PREFIXES = ("BRIDGE_", "HUME_")


# ---------------------------------------------------------------------------------------------------------
# Reading the environment: every setting of the table, problems collected, one error for all of them.


def _read(env: Mapping[str, str], settings: Iterable[Setting]) -> tuple[dict[str, Any], list[str]]:
    """The value of every setting that is set, by path, and the problems found."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for s in settings:
        text = (env.get(s.name) or "").strip()
        if s.secret:
            path = (env.get(f"{s.name}_FILE") or "").strip()
            if text and path:
                problems.append(f"{s.name} and {s.name}_FILE: set one of them, not both")
            if path:
                try:
                    with open(path, encoding="utf-8") as fh:
                        text = fh.read().strip()
                except OSError as exc:
                    problems.append(f"{s.name}_FILE: cannot read {path!r} ({exc.strerror})")
                    continue
        if not text:
            continue
        try:
            values[s.path] = s.parse(text)
        except _Invalid as exc:
            problems.append(f"{s.name}: {exc}")
    return values, problems


def _build(values: Mapping[str, Any]) -> Config:
    """A Config with ``values`` (by path) over the defaults."""
    nested: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for path, value in values.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[head] = value
    base = Config()
    for section, changes in nested.items():
        current = getattr(base, section)
        plain = {k: v for k, v in changes.items() if "." not in k}
        for key, value in changes.items():
            if "." in key:  # an entry of a mapping field, e.g. default_models.audio
                name, _, entry = key.partition(".")
                merged = dict(plain.get(name, getattr(current, name)))
                merged[entry] = value
                plain[name] = merged
        top[section] = replace(current, **plain)
    return replace(base, **top)


def _kafka_problems(kafka: KafkaConfig) -> list[str]:
    problems: list[str] = []
    if kafka.security_protocol.startswith("SASL") and not (kafka.sasl_username and kafka.sasl_password):
        problems.append(
            "BRIDGE_KAFKA_SASL_USERNAME and BRIDGE_KAFKA_SASL_PASSWORD: required with "
            f"BRIDGE_KAFKA_SECURITY_PROTOCOL={kafka.security_protocol}"
        )
    outputs = {kafka.predictions_topic, kafka.errors_topic, kafka.warnings_topic}
    if outputs & set(kafka.input_topics):
        problems.append("BRIDGE_INPUT_TOPICS: must not include an output topic (it would loop)")
    return problems


def load(env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from ``env`` (default: the process environment); raise on any problem."""
    values, problems = _read(os.environ if env is None else env, SETTINGS)
    config = _build(values)
    problems += _kafka_problems(config.kafka)
    if not config.hume.url:
        config = replace(config, hume=replace(config.hume, url=HUME_URLS[config.hume.api]))
    url = urlsplit(config.hume.url)
    schemes = ("ws", "wss") if config.hume.api == "v0" else ("http", "https")
    if url.scheme not in schemes or not url.hostname:
        problems.append(
            f"BRIDGE_HUME_URL: expected a {schemes[0]}:// or {schemes[1]}:// URL for "
            f"BRIDGE_HUME_API={config.hume.api}, got {config.hume.url!r}"
        )
    if not config.hume.api_key:
        problems.append("HUME_API_KEY: required (or HUME_API_KEY_FILE naming a file that holds it)")
    if problems:
        raise ConfigError(problems)
    return config


def load_kafka(env: Mapping[str, str] | None = None) -> KafkaConfig:
    """Only the Kafka settings (connection, security, topics), for tools that talk to the same cluster."""
    kafka_settings = [s for s in SETTINGS if s.path.startswith("kafka.")]
    values, problems = _read(os.environ if env is None else env, kafka_settings)
    kafka = _build(values).kafka
    problems += _kafka_problems(kafka)
    if problems:
        raise ConfigError(problems)
    return kafka


def variable_names() -> set[str]:
    """Every environment variable the bridge reads (``*_FILE`` variants of secrets included)."""
    return {name for s in SETTINGS for name in s.names}


@dataclass(frozen=True, slots=True)
class Unknown:
    """A ``BRIDGE_*`` or ``HUME_*`` variable that is no setting, and the known name closest to it."""

    name: str
    suggestion: str | None

    def __str__(self) -> str:
        hint = f"; did you mean {self.suggestion}?" if self.suggestion else ""
        return f"{self.name} is not a setting of hume-bridge and is ignored{hint}"


def unknown_variables(env: Mapping[str, str] | None = None) -> list[Unknown]:
    """Variables with the bridge's prefixes that no setting reads (a typo falls back to the default
    silently otherwise), each with the closest known name by :func:`difflib.get_close_matches`."""
    known = variable_names()
    names = sorted(os.environ if env is None else env)
    unknown = [n for n in names if n.startswith(PREFIXES) and n not in known and n not in OTHER_VARIABLES]
    return [
        Unknown(n, next(iter(difflib.get_close_matches(n, known, n=1, cutoff=0.8)), None)) for n in unknown
    ]


# ---------------------------------------------------------------------------------------------------------
# Rendering the table: run --help, the README's configuration section, the ConfigMap.


def _label(s: Setting) -> str:
    return " / ".join(s.names)


def settings_help(width: int = 110) -> str:
    """Every setting with its default and meaning, by group: the epilog of ``hume-bridge run --help``."""
    lines = ["settings (environment variables), each with its default:"]
    for group in Group:
        lines += ["", f"{group}:"]
        for s in SETTINGS:
            if s.group is group:
                default = s.default_text or "(not set)"
                lines.append(f"  {_label(s)} = {default}")
                lines += textwrap.wrap(s.meaning, width, initial_indent="      ", subsequent_indent="      ")
    lines += [
        "",
        "Secrets (HUME_API_KEY, BRIDGE_KAFKA_SASL_PASSWORD, BRIDGE_KAFKA_SSL_KEY_PASSWORD) may be read "
        "from the file named by NAME_FILE. Invalid settings: exit code 2 and one message naming every bad "
        "variable; unknown BRIDGE_*/HUME_* variables are logged at start-up with the closest known name.",
    ]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def settings_markdown() -> str:
    """The README's configuration tables, one per group."""
    out: list[str] = []
    for group in Group:
        out += [f"**{group}.** {GROUP_NOTES[group]}", "", "| variable | default | meaning |", "|---|---|---|"]
        for s in SETTINGS:
            if s.group is group:
                names = " / ".join(f"`{n}`" for n in s.names)
                default = s.default_text
                shown = "–" if not default else (default if default.startswith("(") else f"`{default}`")
                out.append(f"| {names} | {_md(shown)} | {_md(s.meaning)} |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


ENV_HEADER = """\
# The settings of `hume-bridge run`, rendered into the ConfigMap `hume-bridge-config` by kustomization.yaml.
# Generated from the settings table in bridge/config.py (scripts/sync_settings.py); a unit test keeps them
# equal. Values are the defaults except BRIDGE_KAFKA_BOOTSTRAP, which names the cluster's Kafka; settings
# without a default are commented out with an example. Override per environment in an overlay
# (configMapGenerator with `behavior: merge`); the name hash kustomize appends makes every change roll the
# Deployment. Secrets are not here: see deployment.yaml.
"""


def settings_env() -> str:
    """deploy/k8s/bridge.env: every setting not taken from the Secret, with its meaning."""
    out = [ENV_HEADER.rstrip("\n")]
    for group in Group:
        out += [
            "",
            f"# == {group} ==",
            *textwrap.wrap(GROUP_NOTES[group], 108, initial_indent="# ", subsequent_indent="# "),
        ]
        for s in SETTINGS:
            if s.group is not group or s.from_secret:
                continue
            value = s.deploy if s.deploy is not None else s.default_text
            out.append(f"# {s.meaning}")
            out.append(f"{s.name}={value}" if s.default_text else f"# {s.name}={value}")
    return "\n".join(out) + "\n"
