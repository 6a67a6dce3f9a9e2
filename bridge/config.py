"""Configuration: one frozen dataclass tree, built from the environment in one place.

Every field has a default and its unit in its name. :func:`load` reads every variable, collects every
problem and raises one :class:`~bridge.errors.ConfigError` naming all of them. Secrets may come from
``NAME`` or from a file named by ``NAME_FILE``; they are held in :class:`Secret`, whose ``repr`` and
``str`` never show the value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from bridge.errors import ConfigError

T = TypeVar("T")
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
    auto_offset_reset: str = "earliest"


@dataclass(frozen=True, slots=True)
class HumeConfig:
    api_key: Secret = field(default_factory=lambda: Secret(""))
    url: str = "wss://api.hume.ai/v0/stream/models"
    protocol: str = "v0"
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
    retry: RetryConfig = field(default_factory=RetryConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    http_host: str = "0.0.0.0"
    http_port: int = 9400
    log_level: str = "INFO"
    shutdown_drain_s: float = 20.0
    revoke_drain_s: float = 10.0


# ---------------------------------------------------------------------------------------------------------
# Reading the environment: every variable the bridge knows, with its parser. Problems are collected.


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def get(self, name: str, default: T, parse: Callable[[str], T], expect: str) -> T:
        text = self.raw(name)
        if text is None:
            return default
        try:
            return parse(text)
        except (ValueError, TypeError):
            self.problems.append(f"{name}: expected {expect}, got {text!r}")
            return default

    def secret(self, name: str) -> Secret:
        direct = self.env.get(name, "")
        path = self.raw(f"{name}_FILE")
        if direct and path:
            self.problems.append(f"{name} and {name}_FILE: set one of them, not both")
        if path:
            try:
                with open(path, encoding="utf-8") as fh:
                    return Secret(fh.read().strip())
            except OSError as exc:
                self.problems.append(f"{name}_FILE: cannot read {path!r} ({exc.strerror})")
                return Secret("")
        return Secret(direct.strip())

    def string(self, name: str, default: str) -> str:
        return self.get(name, default, str, "a string")

    def choice(self, name: str, default: str, choices: tuple[str, ...], upper: bool = True) -> str:
        value = self.string(name, default)
        value = value.upper() if upper else value.lower()
        if value not in choices:
            self.problems.append(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
            return default
        return value

    def integer(self, name: str, default: int, low: int, high: int | None = None) -> int:
        value = self.get(name, default, int, "an integer")
        return self._range(name, value, default, low, high)

    def number(self, name: str, default: float, low: float, high: float | None = None) -> float:
        value = self.get(name, default, float, "a number")
        return self._range(name, value, default, low, high)

    def _range(self, name: str, value: N, default: N, low: float, high: float | None) -> N:
        if value < low or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            self.problems.append(f"{name}: expected a value {bounds}, got {value}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return self.get(name, default, _parse_bool, "true or false")

    def topics(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        text = self.raw(name)
        if text is None:
            return default
        topics = tuple(t.strip() for t in text.split(",") if t.strip())
        bad = [t for t in topics if not _valid_topic(t)]
        if not topics or bad:
            self.problems.append(f"{name}: expected comma-separated Kafka topic names, got {text!r}")
            return default
        return topics

    def models(self, name: str, default: Mapping[str, Any]) -> Mapping[str, Any]:
        text = self.raw(name)
        if text is None:
            return default
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.problems.append(f"{name}: expected a JSON object of models, got invalid JSON")
            return default
        problem = models_problem(value)
        if problem:
            self.problems.append(f"{name}: {problem}")
            return default
        return dict(value)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


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


def load(env: Mapping[str, str] | None = None) -> Config:
    """Build the configuration from ``env`` (default: the process environment); raise on any problem."""
    r = _Reader(os.environ if env is None else env)
    dk, dh, dr, dl, dc = KafkaConfig(), HumeConfig(), RetryConfig(), LimitsConfig(), Config()

    kafka = KafkaConfig(
        bootstrap=r.string("BRIDGE_KAFKA_BOOTSTRAP", dk.bootstrap),
        security_protocol=r.choice(
            "BRIDGE_KAFKA_SECURITY_PROTOCOL", dk.security_protocol, SECURITY_PROTOCOLS
        ),
        sasl_mechanism=r.choice("BRIDGE_KAFKA_SASL_MECHANISM", dk.sasl_mechanism, SASL_MECHANISMS),
        sasl_username=r.string("BRIDGE_KAFKA_SASL_USERNAME", dk.sasl_username),
        sasl_password=r.secret("BRIDGE_KAFKA_SASL_PASSWORD"),
        ssl_cafile=r.string("BRIDGE_KAFKA_SSL_CAFILE", dk.ssl_cafile),
        ssl_certfile=r.string("BRIDGE_KAFKA_SSL_CERTFILE", dk.ssl_certfile),
        ssl_keyfile=r.string("BRIDGE_KAFKA_SSL_KEYFILE", dk.ssl_keyfile),
        ssl_key_password=r.secret("BRIDGE_KAFKA_SSL_KEY_PASSWORD"),
        ssl_check_hostname=r.boolean("BRIDGE_KAFKA_SSL_CHECK_HOSTNAME", dk.ssl_check_hostname),
        idempotence=r.choice("BRIDGE_KAFKA_IDEMPOTENCE", dk.idempotence, ("auto", "on", "off"), upper=False),
        group_id=r.string("BRIDGE_GROUP_ID", dk.group_id),
        input_topics=r.topics("BRIDGE_INPUT_TOPICS", dk.input_topics),
        predictions_topic=r.topics("BRIDGE_PREDICTIONS_TOPIC", (dk.predictions_topic,))[0],
        errors_topic=r.topics("BRIDGE_ERRORS_TOPIC", (dk.errors_topic,))[0],
        warnings_topic=r.topics("BRIDGE_WARNINGS_TOPIC", (dk.warnings_topic,))[0],
        fetch_max_records=r.integer("BRIDGE_FETCH_MAX_RECORDS", dk.fetch_max_records, 1, 100_000),
        fetch_max_wait_ms=r.integer("BRIDGE_KAFKA_FETCH_MAX_WAIT_MS", dk.fetch_max_wait_ms, 0, 60_000),
        commit_interval_s=r.number("BRIDGE_COMMIT_INTERVAL_S", dk.commit_interval_s, 0.01, 3600),
        session_timeout_ms=r.integer("BRIDGE_KAFKA_SESSION_TIMEOUT_MS", dk.session_timeout_ms, 1000),
        heartbeat_interval_ms=r.integer("BRIDGE_KAFKA_HEARTBEAT_INTERVAL_MS", dk.heartbeat_interval_ms, 100),
        max_poll_interval_ms=r.integer("BRIDGE_KAFKA_MAX_POLL_INTERVAL_MS", dk.max_poll_interval_ms, 1000),
        linger_ms=r.integer("BRIDGE_KAFKA_LINGER_MS", dk.linger_ms, 0, 10_000),
        max_request_bytes=r.integer(
            "BRIDGE_KAFKA_MAX_REQUEST_BYTES", dk.max_request_bytes, 1024, 1024 * 1024 * 1024
        ),
        auto_offset_reset=r.choice(
            "BRIDGE_KAFKA_AUTO_OFFSET_RESET", dk.auto_offset_reset, ("earliest", "latest"), upper=False
        ),
    )
    if kafka.security_protocol.startswith("SASL") and not (kafka.sasl_username and kafka.sasl_password):
        r.problems.append(
            "BRIDGE_KAFKA_SASL_USERNAME and BRIDGE_KAFKA_SASL_PASSWORD: required with "
            f"BRIDGE_KAFKA_SECURITY_PROTOCOL={kafka.security_protocol}"
        )
    outputs = {kafka.predictions_topic, kafka.errors_topic, kafka.warnings_topic}
    if outputs & set(kafka.input_topics):
        r.problems.append("BRIDGE_INPUT_TOPICS: must not include an output topic (it would loop)")

    default_models = dict(dh.default_models)
    for kind in default_models:
        default_models[kind] = r.models(f"BRIDGE_DEFAULT_MODELS_{kind.upper()}", default_models[kind])

    window_text = r.raw("BRIDGE_STREAM_WINDOW_MS")
    window = None if window_text is None else r.number("BRIDGE_STREAM_WINDOW_MS", 5000.0, 500.0, 10_000.0)

    hume = HumeConfig(
        api_key=r.secret("HUME_API_KEY"),
        url=r.string("BRIDGE_HUME_URL", dh.url),
        protocol=r.choice("BRIDGE_HUME_PROTOCOL", dh.protocol, ("v0",), upper=False),
        pool_size=r.integer("BRIDGE_POOL_SIZE", dh.pool_size, 1, 1024),
        requests_per_session=r.integer("BRIDGE_REQUESTS_PER_SESSION", dh.requests_per_session, 1, 64),
        connect_timeout_s=r.number("BRIDGE_CONNECT_TIMEOUT_S", dh.connect_timeout_s, 0.1, 300),
        reply_timeout_s=r.number("BRIDGE_REPLY_TIMEOUT_S", dh.reply_timeout_s, 0.1, 600),
        session_max_age_s=r.number("BRIDGE_SESSION_MAX_AGE_S", dh.session_max_age_s, 1, 86_400),
        handshake_rate_per_s=r.number("BRIDGE_HANDSHAKE_RATE_PER_S", dh.handshake_rate_per_s, 0.1, 10_000),
        max_frame_bytes=r.integer("BRIDGE_MAX_FRAME_BYTES", dh.max_frame_bytes, 1024),
        default_models=default_models,
        stream_window_ms=window,
        job_details=r.boolean("BRIDGE_JOB_DETAILS", dh.job_details),
        audio_affinity_idle_s=r.number("BRIDGE_AUDIO_AFFINITY_IDLE_S", dh.audio_affinity_idle_s, 0, 86_400),
    )
    url = urlsplit(hume.url)
    if url.scheme not in ("ws", "wss") or not url.hostname:
        r.problems.append(f"BRIDGE_HUME_URL: expected a ws:// or wss:// URL, got {hume.url!r}")
    if not hume.api_key:
        r.problems.append("HUME_API_KEY: required (or HUME_API_KEY_FILE naming a file that holds it)")

    retry = RetryConfig(
        max_attempts=r.integer("BRIDGE_MAX_ATTEMPTS", dr.max_attempts, 1, 100),
        backoff_initial_s=r.number("BRIDGE_RETRY_BACKOFF_INITIAL_S", dr.backoff_initial_s, 0.0, 3600),
        backoff_max_s=r.number("BRIDGE_RETRY_BACKOFF_MAX_S", dr.backoff_max_s, 0.0, 3600),
        reconnect_initial_s=r.number("BRIDGE_RECONNECT_BACKOFF_INITIAL_S", dr.reconnect_initial_s, 0.0, 3600),
        reconnect_max_s=r.number("BRIDGE_RECONNECT_BACKOFF_MAX_S", dr.reconnect_max_s, 0.0, 3600),
        outage_probe_initial_s=r.number(
            "BRIDGE_OUTAGE_PROBE_INITIAL_S", dr.outage_probe_initial_s, 0.01, 3600
        ),
        outage_probe_max_s=r.number("BRIDGE_OUTAGE_PROBE_MAX_S", dr.outage_probe_max_s, 0.01, 86_400),
    )
    limits = LimitsConfig(
        max_buffered_records=r.integer("BRIDGE_MAX_BUFFERED_RECORDS", dl.max_buffered_records, 1),
        max_buffered_bytes=r.integer("BRIDGE_MAX_BUFFERED_BYTES", dl.max_buffered_bytes, 1024),
        resume_ratio=r.number("BRIDGE_RESUME_RATIO", dl.resume_ratio, 0.0, 1.0),
        max_record_bytes=r.integer("BRIDGE_MAX_RECORD_BYTES", dl.max_record_bytes, 1),
    )
    config = Config(
        kafka=kafka,
        hume=hume,
        retry=retry,
        limits=limits,
        http_host=r.string("BRIDGE_HTTP_HOST", dc.http_host),
        http_port=r.integer("BRIDGE_HTTP_PORT", dc.http_port, 0, 65_535),
        log_level=r.choice("BRIDGE_LOG_LEVEL", dc.log_level, LOG_LEVELS),
        shutdown_drain_s=r.number("BRIDGE_SHUTDOWN_DRAIN_S", dc.shutdown_drain_s, 0.0, 3600),
        revoke_drain_s=r.number("BRIDGE_REVOKE_DRAIN_S", dc.revoke_drain_s, 0.0, 3600),
    )
    if r.problems:
        raise ConfigError(r.problems)
    return config


class _RecordingEnv(dict[str, str]):
    """An environment that remembers every variable asked for."""

    def __init__(self) -> None:
        super().__init__(HUME_API_KEY="x")
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def variable_names() -> set[str]:
    """Every environment variable the bridge reads (``*_FILE`` variants of secrets included)."""
    env = _RecordingEnv()
    load(env)
    return env.asked
