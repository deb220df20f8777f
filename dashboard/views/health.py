"""How healthy the live feed is, as a page shows it: traffic-light figures and the stale banner. Pure.

`assess(health, ...)` and `banner(health, ...)` read a feed's `Health`
(`dashboard.feed.status`) defensively: any attribute may be missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dashboard.views.transactions import Level

LAG_LEVELS = (1_000, 10_000)  # messages behind: amber from the first, red from the second


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


def behind(health: Any) -> bool:
    """True when the feed's consumer lag (summed over partitions) is at least the amber level."""
    lags = _get(health, "lag")
    return bool(lags) and sum(dict(lags).values()) >= LAG_LEVELS[0]


def stalled(health: Any, stale_seconds: float) -> bool:
    """True when the feed's loop has not gone round for more than `stale_seconds`."""
    loop_age = _get(health, "loop_age")
    return loop_age is not None and loop_age > stale_seconds


def quiet(health: Any, stale_seconds: float) -> bool:
    """True when no transaction came for more than `stale_seconds` but the feed is live.

    Live: connected, its loop going round, and caught up (the lag is known
    and below the amber level). That is a quiet topic (night), not a fault.
    """
    age = _get(health, "last_message_age")
    return (
        _get(health, "state") == "connected"
        and age is not None
        and age > stale_seconds
        and bool(_get(health, "lag"))
        and not behind(health)
        and not stalled(health, stale_seconds)
    )


def banner(health: Any, stale_seconds: float, bootstrap: str) -> Banner | None:
    """Return the notice to show above live numbers, None when the feed is live (or has no health).

    Stale (a warning) means the broker is unreachable (an error), the feed is
    behind by its lag, its loop stalled, or no transaction came for more than
    `stale_seconds` while the lag is unknown. A connected, caught-up feed on a
    quiet topic is "info": "Quiet: last transaction 18 s ago.".
    Uses the report's own one-line `message` where it has one (it knows, say,
    that the topic is missing or the feed thread stopped).
    """
    if health is None:
        return None
    state = _get(health, "state")
    where = _get(health, "bootstrap") or bootstrap
    age = _get(health, "last_message_age")
    message = _get(health, "message")
    if state == "down":
        since = f" ({_age(age)})" if age is not None else ""
        what = _sentence(message) if message else f"No broker at {where}, retrying"
        return Banner("error", f"{what}. Figures stop at the last message received{since}.")
    if age is None:
        if message:
            return Banner("info", _sentence(message) + ".")
        return Banner("info", f"Connecting to {where}…" if state == "connecting" else "Waiting for transactions…")
    if stalled(health, stale_seconds):
        loop_age = float(_get(health, "loop_age"))
        return Banner("warning", f"The feed has not read for {duration(loop_age)}: these figures are not live.")
    if behind(health):
        lag = sum(dict(_get(health, "lag")).values())
        return Banner("warning", f"The feed is {lag:,} messages behind the topic: these figures are catching up.")
    if quiet(health, stale_seconds):
        when = f"{age:.0f} s" if age < 120 else duration(age)
        return Banner("info", f"Quiet: last transaction {when} ago.")
    if age > stale_seconds:
        return Banner(
            "warning",
            f"No transaction for {duration(age)} (stale after {stale_seconds:g} s): these figures are not live.",
        )
    return None


def assess(health: Any, stale_seconds: float, buffered: int, capacity: int) -> list[Figure]:
    """Return the health figures of a feed's report, each with a red/amber/green level."""
    state = _get(health, "state") or "unknown"
    state_level: Level = {"connected": "green", "connecting": "amber", "down": "red"}.get(state, "gray")  # type: ignore[assignment]
    age = _get(health, "last_message_age")
    kafka_age = _get(health, "newest_kafka_age")
    rate = _get(health, "messages_per_second")
    lags: dict[int, int] = dict(_get(health, "lag") or {})
    total_lag = sum(lags.values()) if lags else None
    ingest_lag = _get(health, "ingest_lag")
    records = _get(health, "error_records")
    total = _get(health, "messages_total")

    calm = quiet(health, stale_seconds)  # an old last message on a live, caught-up feed is no fault

    def stale_level(seconds: float | None) -> Level:
        if seconds is None:
            return "gray"
        return "green" if seconds <= stale_seconds or calm else "amber"

    return [
        Figure("Broker", state, state_level, str(_get(health, "bootstrap") or "")),
        Figure(
            "Last message",
            _age(age),
            stale_level(age),
            f"quiet topic, feed live and caught up (stale after {stale_seconds:g} s when not)"
            if calm
            else f"stale after {stale_seconds:g} s",
        ),
        Figure(
            "Newest Kafka timestamp", _age(kafka_age), stale_level(kafka_age), "ingestion time of the newest message"
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
