"""Fraud alerts as the dashboard sees them: a bounded, thread-safe log and pure views of it.

The alert feed thread appends records read from darooghe.fraud_alerts;
pages take an immutable DataFrame snapshot. No Kafka and no `st.` here.
The log is capped in rows (ALERT_CAPACITY) and in bytes (ALERT_MAX_BYTES,
estimated per row as ROW_BYTES plus its strings); a parsed row's strings are
cut to MAX_STRING_CHARS and its transaction ids to MAX_IDS, so a hostile
record costs no more than a plain one.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd

from dashboard.core.schema import FRAUD_RULES
from dashboard.store.buffer import ID_WIDTH, MAX_STRING_CHARS

ALERT_CAPACITY = 20_000
ALERT_MAX_BYTES = 32_000_000
ROW_BYTES = 1_000  # a parsed row without its strings (tracemalloc: 1.3 kB for a velocity alert with 6 ids)
MAX_IDS = 20  # transaction ids kept per alert (a velocity alert has max_count + 1 = 6)
COLUMNS = (
    "rule",
    "customer_id",
    "transaction_ids",
    "event_time",
    "kafka_time",
    "count",
    "span_seconds",
    "distance_km",
    "minutes",
    "amount",
    "average",
    "ratio",
    "partition",
    "offset",
)


def parse_alert(value: bytes | None, kafka_ts_ms: int) -> dict[str, Any] | None:
    """Flatten one darooghe.fraud_alerts record into a row; None when it is not an alert record."""
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.get("rule") not in FRAUD_RULES:
        return None
    evidence = record.get("evidence")
    evidence = evidence if isinstance(evidence, dict) else {}
    source = record.get("source")
    source = source if isinstance(source, dict) else {}
    ids = record.get("transaction_ids")
    return {
        "rule": record["rule"],
        "customer_id": str(record.get("customer_id", ""))[:MAX_STRING_CHARS],
        "transaction_ids": tuple(str(i)[:ID_WIDTH] for i in ids[:MAX_IDS]) if isinstance(ids, list) else (),
        "event_time": record.get("event_time_ms"),
        "kafka_time": kafka_ts_ms,
        **{k: evidence.get(k) for k in ("count", "span_seconds", "distance_km", "minutes", "amount", "average")},
        "ratio": evidence.get("ratio"),
        "partition": source.get("partition"),
        "offset": source.get("offset"),
    }


def row_bytes(row: Mapping[str, Any]) -> int:
    """Estimated bytes one parsed alert row holds: ROW_BYTES plus its strings."""
    ids = row.get("transaction_ids") or ()
    return ROW_BYTES + len(str(row.get("customer_id") or "")) + sum(len(i) + 50 for i in ids)


class AlertLog:
    """The latest alerts, oldest first, at most `capacity` of them and `max_bytes` (estimated); one writer."""

    def __init__(self, capacity: int = ALERT_CAPACITY, max_bytes: int = ALERT_MAX_BYTES) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._rows: deque[tuple[dict[str, Any], int]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._version = 0
        self._total = 0  # alerts appended since start: a sequence number that eviction does not reset
        self._cached: tuple[int, pd.DataFrame] | None = None

    def extend(self, rows: Iterable[dict[str, Any]]) -> None:
        """Append parsed alert rows (see `parse_alert`), evicting the oldest beyond the row and byte caps."""
        with self._lock:
            kept = self._rows
            changed = False
            for row in rows:
                size = row_bytes(row)
                kept.append((row, size))
                self._bytes += size
                self._total += 1
                changed = True
                while len(kept) > self.capacity or (self._bytes > self.max_bytes and kept):
                    self._bytes -= kept.popleft()[1]
            if changed:
                self._version += 1

    def clear(self) -> None:
        """Drop every alert (the topic was recreated); `total` keeps counting, so `since` stays monotonic."""
        with self._lock:
            self._rows.clear()
            self._bytes = 0
            self._version += 1
            self._cached = None

    @property
    def total(self) -> int:
        """Alerts appended since start, evicted ones included: the sequence number of the newest alert."""
        return self._total

    def since(self, seen: int) -> tuple[int, list[dict[str, Any]]]:
        """Return the total and the alerts appended after the first `seen` ones (oldest first, evicted ones lost).

        A wall screen keeps the total it saw last and asks only for what came
        after it: a few rows, not a snapshot of the whole log.
        """
        with self._lock:
            total = self._total
            count = min(max(total - seen, 0), len(self._rows))
            return total, [row for row, _ in itertools.islice(self._rows, len(self._rows) - count, None)]

    def nbytes(self) -> int:
        """Estimated bytes of the rows kept."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        return len(self._rows)

    def snapshot(self) -> pd.DataFrame:
        """Return the alerts as a DataFrame (one row each, oldest first); cached per version."""
        with self._lock:
            if self._cached is not None and self._cached[0] == self._version:
                return self._cached[1]
            rows = [row for row, _ in self._rows]
            version = self._version
        frame = alerts_frame(rows)
        with self._lock:
            self._cached = (version, frame)
        return frame


def alerts_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Build the alert DataFrame: times as UTC datetimes, evidence as numbers (NaN when absent)."""
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for name in ("event_time", "kafka_time"):
        frame[name] = pd.to_datetime(pd.to_numeric(frame[name], errors="coerce"), unit="ms", utc=True)
    for name in ("count", "span_seconds", "distance_km", "minutes", "amount", "average", "ratio"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    frame["rule"] = pd.Categorical(frame["rule"], categories=list(FRAUD_RULES))
    return frame
