"""What the dashboard knows about its feed and the pipeline behind it.

`Health` is the immutable snapshot a page renders. `FeedStatus` gathers the
figures behind it from the feed's threads (thread-safe, no Kafka, the time is
passed in); `RateWindow` is pure. The broker queries behind some figures are
in `dashboard.feed.probe`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np

from dashboard.core.freshness import Verdict, is_stale, verdict
from dashboard.core.settings import CREDENTIALS_HINT
from dashboard.store.buffer import ERROR_BITS, Batch

logger = logging.getLogger(__name__)

State = Literal["connecting", "connected", "down"]
RATE_WINDOW = 10.0  # seconds behind messages_per_second


@dataclass(frozen=True)
class Health:
    """A snapshot of the feed for the status panel; times are seconds of the feed's clock.

    `lag`, `invalid_counts`: read-only mappings. A value that could not be
    read from the broker (yet) is None.
    """

    bootstrap: str  # bootstrap servers
    topic: str  # the transactions topic
    state: State
    message: str  # one line for the user, e.g. "no broker at localhost:9092, retrying"
    topic_found: bool  # False while waiting for the topic to appear
    partitions: int  # partitions assigned
    last_error: str | None  # text of the latest broker or consumer error
    last_error_at: float | None  # when it happened (epoch seconds)
    messages_per_second: float  # consumed over the last RATE_WINDOW seconds
    last_message_age: float | None  # seconds since the last message arrived (our clock)
    newest_kafka_age: float | None  # seconds since the newest Kafka timestamp (< 0: producer clock ahead)
    newest_kafka_ts_ms: int | None
    lag: Mapping[int, int]  # partition -> high watermark minus our position
    invalid_counts: Mapping[str, int]  # error code -> messages violating it, since start
    invalid_total: int  # messages violating at least one rule, since start
    messages_total: int  # messages consumed since start
    ingest_lag: int | None  # the ingest group's committed lag, summed over partitions
    error_records: int | None  # records in the error topic
    last_poll_age: float | None  # seconds since the feed's loop last polled the broker (None: not yet)
    freshness: Verdict  # dashboard.core.freshness.verdict: live, quiet, down, behind, stalled...
    stale: bool  # the figures may be wrong now (down, connecting, behind or stalled; not merely quiet)
    at: float  # when this snapshot was taken
    config_error: str | None = None  # librdkafka refused the KAFKA_* settings: the feed never started
    brokers: int | None = None  # brokers up, as the cluster last reported
    cluster_problem: str | None = None  # one line when the cluster cannot give the configured durability

    @property
    def total_lag(self) -> int | None:
        """Sum of the per-partition lag, None before the first watermark query."""
        return sum(self.lag.values()) if self.lag else None


@dataclass(frozen=True)
class Pipeline:
    """What the slow broker queries (`dashboard.feed.probe`) last found; None: no answer (yet)."""

    ingest_lag: int | None = None  # the ingest group's committed lag, summed over partitions
    error_records: int | None = None  # records in the error topic
    brokers: int | None = None  # brokers up, as the cluster last reported
    cluster_problem: str | None = None  # one line when the cluster cannot give the configured durability


class FeedStatus:
    """The figures behind `Health`, written by the feed's threads and read by pages; thread-safe.

    Holds no clients and reads no clock: callers pass `now` (epoch seconds).
    """

    def __init__(self, bootstrap: str, topic: str, stale_seconds: float) -> None:
        self.bootstrap, self.topic, self.stale_seconds = bootstrap, topic, stale_seconds
        self._lock = threading.Lock()
        self._connected = False  # the broker has answered at least once
        self._topic_found = False
        self._positions: dict[int, int] = {}  # partition -> next offset to read
        self._highs: dict[int, int] = {}  # partition -> high watermark, as last seen
        self._rate = RateWindow(RATE_WINDOW)
        self._total = self._invalid_total = 0
        self._invalid = dict.fromkeys(ERROR_BITS, 0)
        self._last_message_at: float | None = None
        self._last_poll_at: float | None = None
        self._newest_kafka_ms: int | None = None
        self._last_error: str | None = None
        self._last_error_at: float | None = None
        self._repeated_error: str | None = None
        self._crash: str | None = None
        self._config_error: str | None = None
        self._pipeline = Pipeline()

    def answered(self) -> None:
        """Record that the broker answered."""
        with self._lock:
            self._connected = True

    def error(self, text: str, now: float) -> bool:
        """Record an error; return False when it repeats the previous one with no message in between."""
        with self._lock:
            self._last_error, self._last_error_at = text, now
            new, self._repeated_error = self._repeated_error != text, text
            return new

    def polled(self, now: float) -> None:
        """Record that the feed's loop polled the broker at `now` (a stalled loop stops calling this)."""
        with self._lock:
            self._last_poll_at = now

    def crashed(self, text: str) -> None:
        """Record that the feed thread died."""
        with self._lock:
            self._crash = text

    def misconfigured(self, text: str, now: float) -> None:
        """Record that the Kafka client settings are refused (one line, secrets masked): nothing will be read."""
        with self._lock:
            self._config_error = text
            self._last_error, self._last_error_at = text, now

    def positions(self) -> dict[int, int]:
        """Return {partition: next offset to read} of the assigned partitions."""
        with self._lock:
            return dict(self._positions)

    def assigned(self, positions: Mapping[int, int], highs: Mapping[int, int]) -> None:
        """Replace the assignment (an empty one: the topic is missing) and add known high watermarks."""
        with self._lock:
            self._topic_found = bool(positions)
            self._positions = dict(positions)
            self._highs = {p: h for p, h in (self._highs | dict(highs)).items() if p in positions}

    def highs(self, highs: Mapping[int, int]) -> None:
        """Record the high watermarks of assigned partitions."""
        with self._lock:
            self._highs.update({p: h for p, h in highs.items() if p in self._positions})

    def appended(self, batch: Batch, nexts: Mapping[int, int], now: float) -> None:
        """Count a batch that was appended to the buffer; `nexts` are the partitions' next offsets."""
        mask = batch.numeric["error_mask"]
        by_code = {code: int(np.count_nonzero(mask & bit)) for code, bit in ERROR_BITS.items()}
        invalid = int(np.count_nonzero(mask))
        newest = int(batch.numeric["kafka_ts_ms"].max())
        with self._lock:
            self._total += len(batch)
            self._invalid_total += invalid
            for code, n in by_code.items():
                self._invalid[code] += n
            self._rate.add(len(batch), now)
            self._last_message_at = now
            self._newest_kafka_ms = newest if self._newest_kafka_ms is None else max(newest, self._newest_kafka_ms)
            self._positions.update({p: offset for p, offset in nexts.items() if p in self._positions})
            self._repeated_error = None

    def pipeline(self, figures: Pipeline) -> None:
        """Record what the PipelineProbe found."""
        with self._lock:
            self._pipeline = figures

    def health(self, now: float, broker_down: bool, auth_error: str | None = None) -> Health:
        """Return the snapshot at time `now`; `broker_down` and `auth_error` come from the feed's BrokerState."""
        with self._lock:
            failed = broker_down or self._crash or self._config_error
            state: State = "down" if failed else "connected" if self._connected else "connecting"
            if self._config_error is not None:
                message = f"cannot connect: {self._config_error}"
            elif self._crash is not None:
                message = f"feed stopped: {self._crash}"
            elif state == "down" and auth_error:
                message = f"authentication failed at {self.bootstrap}, retrying ({CREDENTIALS_HINT}): {auth_error}"
            elif state == "down":
                message = f"no broker at {self.bootstrap}, retrying"
            elif state == "connecting":
                message = f"connecting to {self.bootstrap}"
            elif not self._topic_found:
                message = f"connected to {self.bootstrap}; waiting for topic {self.topic}"
            else:
                message = f"reading {len(self._positions)} partitions of {self.topic} at {self.bootstrap}"
            lag = {p: max(0, self._highs[p] - pos) for p, pos in self._positions.items() if p in self._highs}
            last_age = None if self._last_message_at is None else max(0.0, now - self._last_message_at)
            poll_age = None if self._last_poll_at is None else max(0.0, now - self._last_poll_at)
            fresh = verdict(state, sum(lag.values()) if lag else None, poll_age, last_age, self.stale_seconds)
            return Health(
                bootstrap=self.bootstrap,
                topic=self.topic,
                state=state,
                message=message,
                topic_found=self._topic_found,
                partitions=len(self._positions),
                last_error=self._last_error,
                last_error_at=self._last_error_at,
                messages_per_second=self._rate.rate(now),
                last_message_age=last_age,
                newest_kafka_age=None if self._newest_kafka_ms is None else now - self._newest_kafka_ms / 1000,
                newest_kafka_ts_ms=self._newest_kafka_ms,
                lag=MappingProxyType(lag),
                invalid_counts=MappingProxyType(dict(self._invalid)),
                invalid_total=self._invalid_total,
                messages_total=self._total,
                ingest_lag=self._pipeline.ingest_lag,
                error_records=self._pipeline.error_records,
                last_poll_age=poll_age,
                freshness=fresh,
                stale=is_stale(fresh),
                at=now,
                config_error=self._config_error,
                brokers=self._pipeline.brokers,
                cluster_problem=self._pipeline.cluster_problem,
            )


class RateWindow:
    """Counts of events over a sliding time window; pure, the caller passes the time."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._events: deque[tuple[float, int]] = deque()
        self._sum = 0

    def add(self, count: int, now: float) -> None:
        """Record `count` events at time `now` (non-decreasing)."""
        self._events.append((now, count))
        self._sum += count
        self._expire(now)

    def rate(self, now: float) -> float:
        """Return events per second within (now - window, now]."""
        self._expire(now)
        return self._sum / self.window

    def _expire(self, now: float) -> None:
        events = self._events
        while events and events[0][0] <= now - self.window:
            self._sum -= events.popleft()[1]
