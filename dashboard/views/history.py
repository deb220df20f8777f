"""Long history for the pages: a source's rollups, narrowed by the sidebar filters. Pure, no Streamlit.

`rollups_of(rollups, buffer, clock)` returns the snapshot of the feed's
`Rollups`, or, for a source without any (a `StaticSource` in tests and
benchmarks), of rollups built from its buffer and kept up to date with the
rows appended since (one per buffer, cached).

`select(snap, filters, now_ms)` narrows one rollup table by the filters:

- without a merchant filter, the cube: merchant category, payment method,
  status and validity all apply, in any combination;
- with a merchant filter (or `merchants=True`), the merchant table, at
  5-minute resolution: merchant and category apply; payment method, status
  and validity cannot (the table keeps merchants by category and commission
  type only), and `History.unapplied` names them for a caption.

The time window applies by EVENT time (the rollups' key), where the buffer's
pages use the Kafka timestamp: the two differ only for late or time-warped
messages. Without a window, history starts at the first valid transaction
rolled up: a time-warped invalid one, days older, would stretch every time
axis, so rows before it are left out.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.core.timeunits import MINUTE_MS
from dashboard.store.buffer import BufferView
from dashboard.store.rollups import MERCHANT_MINUTES, ROLLUP_DAYS, Rollups, RollupSnapshot
from dashboard.views.filters import Filters, code_lookup
from dashboard.views.timebins import Bins, cut

#: Filter -> label, in the sidebar's order.
FILTER_LABELS = {
    "merchants": "merchant",
    "categories": "category",
    "methods": "payment method",
    "statuses": "status",
    "validity": "validity",
}
_COLUMNS = {"categories": "merchant_category", "methods": "payment_method", "statuses": "status"}


@dataclass(frozen=True)
class History:
    """Rollup rows passing the filters.

    `frame`: the table's columns (minute, dimensions, count, amount,
    commission); `step`: minutes per time slot (1, or MERCHANT_MINUTES for
    the merchant table); `start_minute`: the window's first minute (None:
    everything kept); `origin_minute`: the rollups' first minute with a valid
    transaction (`RollupSnapshot.span_minutes`); `end_minute`: now's minute;
    `unapplied`: filters the table could not narrow; `merchant_table`: which
    table it is. Rows start at `first_minute`.
    """

    frame: pd.DataFrame
    step: int
    start_minute: int | None
    origin_minute: int
    end_minute: int
    unapplied: tuple[str, ...]
    merchant_table: bool

    @property
    def first_minute(self) -> int:
        """The first minute covered: the window's start, else the origin."""
        return self.start_minute if self.start_minute is not None else self.origin_minute


def select(snap: RollupSnapshot, filters: Filters, now_ms: int, *, merchants: bool = False) -> History:
    """Return the rollup rows passing `filters` (see the module docstring for what applies)."""
    use_merchants = merchants or bool(filters.merchants)
    table = snap.merchants if use_merchants else snap.cube
    step = MERCHANT_MINUTES if use_merchants else 1
    span = snap.span_minutes()
    origin = span[0] if span is not None else now_ms // MINUTE_MS
    start = None if filters.window_ms is None else (now_ms - filters.window_ms) // MINUTE_MS
    # Rows are sorted by minute: the span is a slice (no copy), the other filters a mask over it.
    first_row = int(np.searchsorted(table["minute"].to_numpy(), (origin if start is None else start) - step + 1))
    table = table.iloc[first_row:] if first_row else table
    mask = np.ones(len(table), dtype=bool)
    unapplied: list[str] = []
    wanted = {"merchants": filters.merchants, "categories": filters.categories}
    wanted |= {"methods": filters.methods, "statuses": filters.statuses}
    for name, values in wanted.items():
        if not values:
            continue
        column = "merchant_id" if name == "merchants" else _COLUMNS[name]
        if column not in table:
            unapplied.append(FILTER_LABELS[name])
            continue
        cat = table[column].array  # a Categorical: compare codes, not strings
        mask &= code_lookup(tuple(cat.categories), values)[cat.codes]
    if filters.validity != "all":
        if "valid" in table:
            mask &= table["valid"].to_numpy() == (filters.validity == "valid")
        else:
            unapplied.append(FILTER_LABELS["validity"])
    frame = (table if mask.all() else table[mask]).reset_index(drop=True)
    return History(frame, step, start, origin, now_ms // MINUTE_MS, tuple(unapplied), use_merchants)


def caption(history: History, what: str = "the history charts") -> str | None:
    """One line on the filters that could not narrow `what` (built from `history`), None when all applied."""
    if not history.unapplied:
        return None
    names = ", ".join(history.unapplied)
    plural = "s" if len(history.unapplied) > 1 else ""
    return (
        f"The {names} filter{plural} cannot narrow {what}: "
        "the rollups keep merchants by category and commission type only."
    )


def describe(snap: RollupSnapshot, days: float = ROLLUP_DAYS) -> str:
    """One line on what the history holds: how many transactions, since when, how far back it reaches."""
    span = snap.span_minutes()
    if span is None:
        return (
            f"History (the ingest workers' per-minute aggregates by event time, up to {days:g} days back): "
            "nothing aggregated yet."
        )
    since = pd.Timestamp(span[0] * MINUTE_MS, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"History covers {snap.added:,} transactions since {since} (the ingest workers' per-minute aggregates "
        f"by event time, kept up to {days:g} days back); the time window applies by event time."
    )


def time_bins(history: History) -> Bins:
    """Cut first_minute .. end_minute into aligned nice bins (about MAX_BINS), at least one slot wide."""
    start_ms = history.first_minute * MINUTE_MS
    end_ms = (history.end_minute + 1) * MINUTE_MS
    minutes = history.frame["minute"].to_numpy() * MINUTE_MS
    return cut(minutes, start_ms, end_ms - 1, max(end_ms - start_ms, MINUTE_MS), history.step * MINUTE_MS)


def sum_by(keys: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Return the distinct keys (sorted) and the sums of each of `values` per key.

    Rollup frames come sorted by minute, so keys led by the minute are
    usually sorted already: then no sort is needed, only one pass.
    """
    if len(keys) > 1 and bool(np.any(keys[1:] < keys[:-1])):
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        values = tuple(v[order] for v in values)
    if len(keys) == 0:
        return keys, [v[:0] for v in values]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[starts], [np.add.reduceat(v, starts) for v in values]


# --- rollups of a source -------------------------------------------------------------------


@dataclass
class _Built:
    rollups: Rollups
    appended: int  # buffer.total_appended already rolled up


_built: weakref.WeakKeyDictionary[BufferView, _Built] = weakref.WeakKeyDictionary()
_built_lock = threading.Lock()


def rollups_of(rollups: Rollups | None, buffer: BufferView, clock: Callable[[], float]) -> RollupSnapshot:
    """Return the snapshot of `rollups`, or (None) of rollups kept from `buffer`'s rows.

    The second kind is built once per buffer and then takes only the rows
    appended since the last call; rows evicted from the buffer before a call
    saw them are missed. `clock` (epoch seconds) sets its horizon.
    """
    if rollups is not None:
        return rollups.snapshot()
    snapshot = buffer.snapshot()
    with _built_lock:
        built = _built.get(buffer)
        if built is None:
            built = _built[buffer] = _Built(Rollups(ROLLUP_DAYS, clock), 0)
        new = snapshot.total_appended - built.appended
        if new > 0:
            built.rollups.add_snapshot(snapshot, max(0, len(snapshot) - new))
            built.appended = snapshot.total_appended
        return built.rollups.snapshot()
