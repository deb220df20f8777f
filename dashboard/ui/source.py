"""The live data source as the pages see it, and how healthy it is.

Wiring: `source(settings)` returns the one `dashboard.feed.transactions.Feed` of this
server, created by `st.cache_resource` on first use and stopped when the
cache releases it (or at interpreter exit, since Streamlit does not promise
`on_release` on shutdown). Tests and benchmarks call `install(source, clock)`
first to serve a prefilled buffer without Kafka, at a fixed time if they like.

Pure: `assess(health, ...)` reads a feed's `Health` defensively (any
attribute may be missing) into traffic-light figures and the stale banner.
"""

from __future__ import annotations

import atexit
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import streamlit as st

from dashboard.core.settings import Settings
from dashboard.store.alert_log import AlertLog
from dashboard.store.buffer import RingBuffer
from dashboard.store.rollups import Rollups, RollupSnapshot
from dashboard.views import history
from dashboard.views.transactions import Level

logger = logging.getLogger(__name__)

LAG_LEVELS = (1_000, 10_000)  # messages behind: amber from the first, red from the second
STOP_TIMEOUT_S = 5.0


class Source(Protocol):
    """What pages need from a feed: its buffer and a health report (None if it has none).

    A source may also have a `rollups` attribute (`dashboard.store.rollups.Rollups`,
    as the Feed has): the long history. Pages read it through `rollups(source)`,
    which builds rollups from the buffer for a source without one.
    """

    buffer: RingBuffer

    def health(self) -> Any: ...


@dataclass
class StaticSource:
    """A fixed buffer with a fixed (or no) health report, for tests and benchmarks.

    Without `rollups`, pages roll up the buffer's rows themselves.
    """

    buffer: RingBuffer
    report: Any = None
    rollups: Rollups | None = None

    def health(self) -> Any:
        """Return the fixed health report."""
        return self.report


@dataclass
class _Installed:
    source: Source | None = None
    clock: Callable[[], float] = time.time
    alerts: AlertLog | None = None


_installed = _Installed()


def install(source: Source | None, clock: Callable[[], float] | None = None, alerts: AlertLog | None = None) -> None:
    """Serve `source` and `alerts` (None: back to the real feeds) and read the time from `clock`."""
    _installed.source = source
    _installed.clock = clock or time.time
    _installed.alerts = alerts


def now_ms() -> int:
    """Return the current time in epoch milliseconds from the installed clock."""
    return int(_installed.clock() * 1000)


def rollups(source: Source) -> RollupSnapshot:
    """Return the snapshot of the source's rollups, or of rollups kept from its buffer when it has none."""
    return history.rollups_of(getattr(source, "rollups", None), source.buffer, lambda: now_ms() / 1000)


def source(settings: Settings) -> Source:
    """Return the installed source, or this server's feed (started on first call)."""
    if _installed.source is not None:
        return _installed.source
    return _feed(settings)


_running: list[Any] = []  # feeds started and not yet released


def _stop(feed: Any) -> None:
    """Stop a feed (on_release of the cache); best effort, never raises."""
    if feed in _running:
        _running.remove(feed)
    try:
        feed.stop(STOP_TIMEOUT_S)
    except Exception:  # never let stopping break a rerun or the exit
        logger.exception("stopping the feed failed")


@atexit.register
def _stop_all() -> None:
    for feed in list(_running):
        _stop(feed)


@st.cache_resource(show_spinner=False, on_release=_stop)
def _feed(_settings: Settings) -> Source:
    """Create and start the feed once per server (the leading underscore skips hashing)."""
    # Imported late: tests install a source and never load the Kafka feed.
    from dashboard.feed.transactions import Feed  # noqa: PLC0415

    feed = Feed(_settings, RingBuffer(_settings.buffer_capacity))
    feed.start()
    _running.append(feed)
    logger.info("dashboard feed started (%s)", _settings.describe())
    return feed


def alert_log(settings: Settings) -> AlertLog:
    """Return the installed alert log, or the log of this server's fraud-alert tail (started on first call)."""
    if _installed.alerts is not None:
        return _installed.alerts
    if _installed.source is not None:  # a test source without alerts: an empty log
        return AlertLog()
    return _alert_feed(settings).log


@st.cache_resource(show_spinner=False, on_release=_stop)
def _alert_feed(_settings: Settings) -> Any:
    """Create and start the fraud-alert tail once per server."""
    from dashboard.feed.alerts import AlertFeed  # noqa: PLC0415  (imported late, as the feed)

    feed = AlertFeed(_settings)
    feed.start()
    _running.append(feed)
    return feed


# --- health, pure -------------------------------------------------------------------


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


def banner(health: Any, stale_seconds: float, bootstrap: str) -> Banner | None:
    """Return the notice to show above live numbers, None when the feed is live (or has no health).

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

    def stale_level(seconds: float | None) -> Level:
        if seconds is None:
            return "gray"
        return "green" if seconds <= stale_seconds else "amber"

    return [
        Figure("Broker", state, state_level, str(_get(health, "bootstrap") or "")),
        Figure("Last message", _age(age), stale_level(age), f"stale after {stale_seconds:g} s"),
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
