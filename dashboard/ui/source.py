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
from typing import Any, Protocol

import streamlit as st

from dashboard.core.settings import Settings
from dashboard.store.alert_log import AlertLog
from dashboard.store.buffer import BufferView, RingBuffer
from dashboard.store.rollups import Rollups, RollupSnapshot
from dashboard.views import history

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0
FIRST_ROWS_WAIT_S = 2.0  # the first page run after the server starts waits this long at most for the first rows


class Source(Protocol):
    """What pages need from a feed: its buffer and a health report (None if it has none).

    A source may also have a `rollups` attribute (`dashboard.store.rollups.Rollups`,
    as the live source has, fed from darooghe.rollups): the long history. Pages read it through `rollups(source)`,
    which builds rollups from the buffer for a source without one.
    """

    @property
    def buffer(self) -> BufferView: ...

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


def history_status(source: Source) -> str | None:
    """One line on the source's history feed (loading, loaded, rebuilt after a recreated topic); None without one."""
    feed = getattr(source, "history", None)
    return None if feed is None else str(feed.status())


_running: list[Any] = []  # feeds started and not yet released


class LiveSource:
    """This server's live source: the transactions feed (buffer, health) and the history feed (rollups)."""

    def __init__(self, feed: Any, history: Any) -> None:
        self.feed = feed  # dashboard.feed.transactions.Feed
        self.history = history  # dashboard.feed.rollups.RollupFeed
        self.buffer: RingBuffer = feed.buffer
        self.rollups: Rollups = history.rollups

    def health(self) -> Any:
        """The feed's health report."""
        return self.feed.health()

    def stop(self, timeout: float) -> None:
        """Stop both threads."""
        self.feed.stop(timeout)
        self.history.stop(timeout)


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
    """Create and start the feeds once per server (the leading underscore skips hashing)."""
    # Imported late: tests install a source and never load the Kafka feeds.
    from dashboard.feed.rollups import RollupFeed  # noqa: PLC0415
    from dashboard.feed.transactions import Feed  # noqa: PLC0415

    live = LiveSource(Feed(_settings, RingBuffer(_settings.buffer_capacity)), RollupFeed(_settings))
    live.feed.start()
    live.history.start()
    _running.append(live)
    logger.info("dashboard feed started (%s)", _settings.describe())
    # Once per server: give the first page its first rows rather than "waiting" until its next refresh.
    deadline = time.monotonic() + FIRST_ROWS_WAIT_S
    while len(live.feed.buffer) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return live


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
