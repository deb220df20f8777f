"""One frozen settings object per process, built from the environment.

Names match the original course generator (EVENT_RATE, PEAK_FACTOR, ...) so
its users need not relearn anything. Any other `KAFKA_`-prefixed variable is a
librdkafka setting passed through to every client (KAFKA_SASL_PASSWORD ->
`sasl.password`), so a secured cluster needs no code change. A bad value raises
`SettingsError` whose text is one readable line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from dashboard.core.access import parse_people
from dashboard.core.schema import ERROR_TOPIC, FRAUD_TOPIC, ROLLUPS_TOPIC, TRANSACTIONS_TOPIC

INIT_MODES = ("flush", "append", "skip")

# Variables with the KAFKA_ prefix that are not librdkafka settings: ours, or
# the local broker script's.
_NOT_LIBRDKAFKA = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_NODES",
    "KAFKA_SASL",
    "KAFKA_PORT",
    "KAFKA_CONTROLLER_PORT",
    "KAFKA_HOME",
    "KAFKA_HEAP_OPTS",
    "KAFKA_OPTS",
    "KAFKA_START_TIMEOUT",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_VERSION",
    "KAFKA_EXTRA_CONFIG",
    "KAFKA_STOP_TIMEOUT",
}
#: What to check when the broker refuses our credentials (logs, the Health page).
CREDENTIALS_HINT = "check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
# confluent-kafka's Python-side options, whose names keep their underscores.
_PYTHON_KEYS = {"error_cb", "stats_cb", "throttle_cb", "oauth_cb", "on_delivery", "on_commit", "logger"}
_SECRET_WORDS = ("password", "secret", "key", "token", "jaas", "credential")
# Every `sasl.*` and `ssl.*` setting is masked in logs except these, which hold
# no secret (a mechanism, a user name, a path, an algorithm).
_PUBLIC_SECURITY_KEYS = {
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.kerberos.service.name",
    "sasl.kerberos.principal",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.min.time.before.relogin",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.scope",
    "sasl.oauthbearer.token.endpoint.url",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.crl.location",
    "ssl.endpoint.identification.algorithm",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    "ssl.engine.id",
}


def is_secret(key: str) -> bool:
    """True when the librdkafka setting `key` may hold a secret: never log its value."""
    if key.startswith(("sasl.", "ssl.")) and key not in _PUBLIC_SECURITY_KEYS:
        return True
    return any(word in key for word in _SECRET_WORDS)


class SettingsError(ValueError):
    """A setting has a value we refuse; str() is one line naming the variable."""


@dataclass(frozen=True)
class Spec:
    """How one environment variable maps to a settings field."""

    env: str
    kind: Callable[[str], Any]
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    doc: str = ""


def _spec(
    default: Any,
    env: str,
    kind: Callable[[str], Any],
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    doc: str = "",
) -> Any:
    return field(default=default, metadata={"spec": Spec(env, kind, low, high, choices, doc)})


def _optional_int(text: str) -> int | None:
    return int(text) if text.strip() else None


@dataclass(frozen=True)
class Settings:
    """Every setting of every Darooghe process; see README for the table."""

    bootstrap_servers: str = _spec("localhost:9092", "KAFKA_BOOTSTRAP_SERVERS", str, doc="Kafka bootstrap servers")
    transactions_topic: str = _spec(TRANSACTIONS_TOPIC, "TRANSACTIONS_TOPIC", str, doc="topic of transaction events")
    error_topic: str = _spec(ERROR_TOPIC, "ERROR_TOPIC", str, doc="topic of validation error records")
    fraud_topic: str = _spec(FRAUD_TOPIC, "FRAUD_TOPIC", str, doc="topic of fraud alerts")
    rollups_topic: str = _spec(ROLLUPS_TOPIC, "ROLLUPS_TOPIC", str, doc="topic of per-minute aggregates")
    topic_partitions: int = _spec(3, "TOPIC_PARTITIONS", int, 1, 64, doc="partitions of topics we create")
    topic_replication: int = _spec(
        1, "TOPIC_REPLICATION_FACTOR", int, 1, 16, doc="replicas of every partition of topics we create (production: 3)"
    )
    topic_min_insync: int | None = _spec(
        None,
        "TOPIC_MIN_INSYNC_REPLICAS",
        _optional_int,
        1,
        16,
        doc="min.insync.replicas of topics we create (empty: min(2, replication))",
    )
    # Pulse generator (names and ranges of the original course generator).
    event_rate: float = _spec(100.0, "EVENT_RATE", float, 10, 1000, doc="average events per minute")
    peak_factor: float = _spec(2.5, "PEAK_FACTOR", float, 1.0, 5.0, doc="rate multiplier at the daily peak")
    fraud_rate: float = _spec(0.02, "FRAUD_RATE", float, 0.0, 0.1, doc="share of fraudulent transactions")
    declined_rate: float = _spec(0.05, "DECLINED_RATE", float, 0.0, 0.2, doc="share of declined transactions")
    merchant_count: int = _spec(50, "MERCHANT_COUNT", int, 10, 500, doc="distinct merchants")
    customer_count: int = _spec(1000, "CUSTOMER_COUNT", int, 100, 10000, doc="distinct customers")
    event_init_mode: str = _spec("flush", "EVENT_INIT_MODE", str, choices=INIT_MODES, doc="history on start")
    history_events: int = _spec(20_000, "HISTORY_EVENTS", int, 0, 10_000_000, doc="historical events on start")
    history_days: float = _spec(7.0, "HISTORY_DAYS", float, 0.01, 60, doc="days of history")
    invalid_rate: float = _spec(0.01, "INVALID_RATE", float, 0.0, 1.0, doc="share of deliberately invalid events")
    seed: int | None = _spec(None, "SEED", _optional_int, doc="random seed (empty: random)")
    # Validation and ingest.
    time_skew_ms: int = _spec(1000, "TIME_SKEW_MS", int, 0, 3_600_000, doc="tolerated future clock skew")
    ingest_group: str = _spec("darooghe-ingest", "INGEST_GROUP", str, doc="consumer group of the ingest worker")
    txn_max_messages: int = _spec(
        100_000, "TXN_MAX_MESSAGES", int, 100, 1_000_000, doc="messages one ingest transaction covers at most"
    )
    fraud_min_history: int = _spec(
        5, "FRAUD_MIN_HISTORY", int, 1, 1000, doc="earlier transactions before the amount rule judges"
    )
    fraud_lookback_days: float = _spec(
        7.0, "FRAUD_LOOKBACK_DAYS", float, 0, 60, doc="history replayed to rebuild fraud state"
    )
    fraud_max_customers: int = _spec(
        200_000,
        "FRAUD_MAX_CUSTOMERS",
        int,
        100,
        100_000_000,
        doc="customers whose fraud windows, and whose amount averages, are kept per partition (least recent dropped)",
    )
    # Dashboard.
    rollup_days: float = _spec(
        8.0, "ROLLUP_DAYS", float, 0.01, 60, doc="days of per-minute aggregates kept (topic retention and history)"
    )
    buffer_capacity: int = _spec(200_000, "BUFFER_CAPACITY", int, 1000, 20_000_000, doc="transactions kept")
    refresh_seconds: float = _spec(2.0, "REFRESH_SECONDS", float, 0.5, 300, doc="default refresh period")
    stale_seconds: float = _spec(
        10.0,
        "STALE_SECONDS",
        float,
        1,
        3600,
        doc="a feed loop without a poll for this long is stale (quiet when caught up)",
    )
    # Who may look (only when sign-in is configured; see README "Who may look").
    allowed: tuple[str, ...] = _spec(
        (), "DASHBOARD_ALLOWED", parse_people, doc="emails and @domains allowed past sign-in (empty: nobody)"
    )
    analysts: tuple[str, ...] = _spec(
        (), "DASHBOARD_ANALYSTS", parse_people, doc="emails and @domains who see customer data unmasked"
    )
    # Operations.
    metrics_port: int | None = _spec(
        None, "METRICS_PORT", _optional_int, 1, 65535, doc="ingest worker's /metrics and /healthz port (empty: off)"
    )
    metrics_address: str = _spec("127.0.0.1", "METRICS_ADDRESS", str, doc="address the metrics port binds to")
    kafka_extra: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold secrets

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `env` (default os.environ); raise SettingsError on a bad value."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            spec: Spec | None = f.metadata.get("spec")
            if spec is None or spec.env not in env:
                continue
            text = env[spec.env]
            try:
                value = spec.kind(text.strip())
            except ValueError as exc:
                if spec.kind is parse_people:  # its error names the bad entry
                    raise SettingsError(f"{spec.env}: {exc}") from None
                kind = (
                    "a number" if spec.kind is float else "an integer" if spec.kind in (int, _optional_int) else "text"
                )
                raise SettingsError(f"{spec.env}={text!r} is not {kind}") from None
            _check_range(spec, value, text)
            values[f.name] = value
        extra = tuple(
            sorted(
                (name[6:].lower().replace("_", "."), value)
                for name, value in env.items()
                if name.startswith("KAFKA_") and name not in _NOT_LIBRDKAFKA
            )
        )
        return cls(**values, kafka_extra=extra)

    def __post_init__(self) -> None:
        if self.topic_min_insync is not None and self.topic_min_insync > self.topic_replication:
            raise SettingsError(
                f"TOPIC_MIN_INSYNC_REPLICAS={self.topic_min_insync} exceeds "
                f"TOPIC_REPLICATION_FACTOR={self.topic_replication}: no write could ever succeed"
            )

    @property
    def min_insync(self) -> int:
        """min.insync.replicas of the topics we create: TOPIC_MIN_INSYNC_REPLICAS or min(2, replication)."""
        return self.topic_min_insync if self.topic_min_insync is not None else min(2, self.topic_replication)

    def kafka_config(self, **overrides: Any) -> dict[str, Any]:
        """Return the librdkafka config: bootstrap servers, passthrough settings, then overrides.

        Keyword names use underscores for dots (`group_id` -> `group.id`).
        """
        # librdkafka's own log lines (connection refused, ...) go quiet by
        # default: clients report broker errors through error_cb as a state.
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, "log_level": 2}
        config.update(dict(self.kafka_extra))
        config.update({k if k in _PYTHON_KEYS else k.replace("_", "."): v for k, v in overrides.items()})
        return config

    def describe(self) -> str:
        """One line for logs with secrets masked."""
        extra = ", ".join(f"{k}={'***' if is_secret(k) else v}" for k, v in self.kafka_extra)
        return f"bootstrap={self.bootstrap_servers}" + (f" ({extra})" if extra else "")

    def mask(self, text: str) -> str:
        """Return `text` with the value of every secret passthrough setting replaced by ***."""
        for key, value in self.kafka_extra:
            if value and is_secret(key):
                text = text.replace(value, "***")
        return text


def _check_range(spec: Spec, value: Any, text: str) -> None:
    if spec.choices is not None and value not in spec.choices:
        raise SettingsError(f"{spec.env}={text!r} must be one of {', '.join(spec.choices)}")
    if value is None or spec.low is None:
        return
    high_ok = spec.high is None or value <= spec.high
    if not (spec.low <= value and high_ok) or (isinstance(value, float) and math.isnan(value)):
        high = f"{spec.high:g}" if spec.high is not None else "inf"
        raise SettingsError(f"{spec.env}={text!r} is out of range {spec.low:g}-{high}")


def settings_table() -> list[tuple[str, str, str, str]]:
    """Rows (variable, default, range, meaning) for the README."""
    rows = []
    defaults = Settings()
    for f in fields(Settings):
        spec: Spec | None = f.metadata.get("spec")
        if spec is None:
            continue
        rng = (
            "|".join(spec.choices) if spec.choices else (f"{spec.low:g}-{spec.high:g}" if spec.low is not None else "")
        )
        default = getattr(defaults, f.name)
        rows.append((spec.env, ", ".join(default) if isinstance(default, tuple) else str(default), rng, spec.doc))
    return rows
