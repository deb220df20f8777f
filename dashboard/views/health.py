"""How healthy the live feed is, as a page shows it: traffic-light figures and the stale banner. Pure.

`assess(health, ...)` and `banner(health, ...)` read a feed's `Health`
(`dashboard.feed.status`) defensively: any attribute may be missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dashboard.core.freshness import STALE_LAG, Verdict, is_stale, verdict
from dashboard.views.transactions import Level

LAG_LEVELS = (STALE_LAG, 10_000)  # messages behind: amber from the first (stale), red from the second


@dataclass(frozen=True)
class Figure:
    """One health figure: a label, its value as text, a traffic-light level and a note.

    `level` is None for a plain figure without thresholds, "gray" when its
    state is unknown.
    """

    label: str
    value: str
    level: Level | None
    note: str = ""


@dataclass(frozen=True)
class Banner:
    """A notice above live figures: "error", "warning" or "info" with its text."""

    kind: Literal["error", "warning", "info"]
    text: str


def _get(health: Any, name: str) -> Any:
    """Return a `dashboard.feed.status.Health` attribute, None when the report (or the attribute) is missing."""
    return getattr(health, name, None)


def invalid_by_code(health: Any) -> dict[str, int]:
    """Return the report's count of invalid messages per error code ({} when absent)."""
    return dict(_get(health, "invalid_counts") or {})


def duration(seconds: float) -> str:
    """Format a duration: "4.2 s", "12 min", "3.5 h"."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _age(seconds: float | None) -> str:
    return "never" if seconds is None else f"{duration(seconds)} ago"


def _lag_level(lag: int | None) -> Level:
    if lag is None:
        return "gray"
    return "green" if lag < LAG_LEVELS[0] else "amber" if lag < LAG_LEVELS[1] else "red"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _total_lag(health: Any) -> int | None:
    lags: dict[int, int] = dict(_get(health, "lag") or {})
    return sum(lags.values()) if lags else None


def freshness(health: Any, stale_seconds: float) -> Verdict:
    """Return the report's freshness verdict (`dashboard.core.freshness.verdict`), from its figures."""
    return verdict(
        _get(health, "state"),
        _total_lag(health),
        _get(health, "last_poll_age"),
        _get(health, "last_message_age"),
        stale_seconds,
    )


def banner(health: Any, stale_seconds: float, bootstrap: str) -> Banner | None:
    """Return the notice to show above live numbers, None when the feed is live (or has no health).

    Stale (an error or a warning) only when the feed is down, behind or
    stalled (`dashboard.core.freshness`); a connected, caught-up feed on a
    quiet topic gets an info line ("quiet: last transaction 18 s ago").
    Uses the report's own one-line `message` where it has one (it knows, say,
    that the topic is missing or the feed thread stopped).
    """
    if health is None:
        return None
    config_error = _get(health, "config_error")
    if config_error:
        text = f"The live feed cannot start: {config_error}. Fix the setting and restart the dashboard."
        return Banner("error", text)
    state = _get(health, "state")
    where = _get(health, "bootstrap") or bootstrap
    age = _get(health, "last_message_age")
    message = _get(health, "message")
    fresh = freshness(health, stale_seconds)
    if fresh == "down":
        since = f" ({_age(age)})" if age is not None else ""
        what = _sentence(message) if message else f"No broker at {where}, retrying"
        return Banner("error", f"{what}. Figures stop at the last message received{since}.")
    cluster = _get(health, "cluster_problem")
    if cluster:
        return Banner("warning", f"Kafka cluster: {cluster}.")
    if fresh == "stalled":
        poll = _get(health, "last_poll_age")
        return Banner(
            "warning",
            f"The feed has not polled the broker for {duration(poll)} (stale after {stale_seconds:g} s): "
            "these figures are not live.",
        )
    if fresh == "behind":
        return Banner(
            "warning",
            f"The feed is {_total_lag(health):,} messages behind the broker (stale from {STALE_LAG:,}): "
            "these figures are catching up.",
        )
    if fresh in ("waiting", "connecting"):
        if message:
            return Banner("info", _sentence(message) + ".")
        return Banner("info", f"Connecting to {where}…" if state == "connecting" else "Waiting for transactions…")
    if fresh == "quiet":
        return Banner("info", f"Quiet: last transaction {duration(age)} ago; the feed is connected and caught up.")
    return None


def assess(health: Any, stale_seconds: float, buffered: int, capacity: int) -> list[Figure]:
    """Return the health figures of a feed's report, each with a red/amber/green level."""
    state = _get(health, "state") or "unknown"
    state_level: Level = {"connected": "green", "connecting": "amber", "down": "red"}.get(state, "gray")  # type: ignore[assignment]
    age = _get(health, "last_message_age")
    kafka_age = _get(health, "newest_kafka_age")
    rate = _get(health, "messages_per_second")
    lags: dict[int, int] = dict(_get(health, "lag") or {})
    total_lag = _total_lag(health)
    fresh = freshness(health, stale_seconds)
    poll = _get(health, "last_poll_age")
    ingest_lag = _get(health, "ingest_lag")
    records = _get(health, "error_records")
    total = _get(health, "messages_total")
    brokers = _get(health, "brokers")
    cluster = _get(health, "cluster_problem")
    cluster_level: Level = "gray" if brokers is None else "red" if cluster else "green"

    def stale_level(seconds: float | None) -> Level:
        # An old last message is amber only when the feed is stale too: quiet is not stale.
        if seconds is None:
            return "gray"
        return "amber" if seconds > stale_seconds and is_stale(fresh) else "green"

    quiet = fresh == "quiet"
    return [
        Figure("Broker", state, state_level, str(_get(health, "bootstrap") or "")),
        Figure(
            "Brokers up",
            "—" if brokers is None else str(brokers),
            cluster_level,
            cluster or "topic replication as configured (TOPIC_REPLICATION_FACTOR)",
        ),
        Figure(
            "Last message",
            _age(age),
            stale_level(age),
            "quiet: connected and caught up" if quiet else f"stale after {stale_seconds:g} s when not caught up",
        ),
        Figure(
            "Newest Kafka timestamp", _age(kafka_age), stale_level(kafka_age), "ingestion time of the newest message"
        ),
        Figure(
            "Feed loop",
            "—" if poll is None else f"polled {_age(poll)}",
            "gray" if poll is None else "amber" if fresh == "stalled" else "green",
            f"stalled after {stale_seconds:g} s without a poll",
        ),
        Figure("Throughput", "—" if rate is None else f"{rate:,.1f} msg/s", None),
        Figure(
            "Dashboard consumer lag",
            "—" if total_lag is None else f"{total_lag:,}",
            _lag_level(total_lag),
            ", ".join(f"p{p}: {lag:,}" for p, lag in sorted(lags.items())),
        ),
        Figure("Ingest worker lag", "—" if ingest_lag is None else f"{ingest_lag:,}", _lag_level(ingest_lag)),
        Figure("Error log records", "—" if records is None else f"{records:,}", None),
        Figure("Messages received", "—" if total is None else f"{total:,}", None),
        Figure("Buffered", f"{buffered:,} / {capacity:,}", None, "rows kept in memory"),
    ]
