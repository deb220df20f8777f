"""Per-minute rollups of every transaction the feed has read: days of history in bounded memory. Pure.

The ring buffer holds the latest rows only; `Rollups` keeps sums for days, so
the historical charts (hourly volume, the weekday heatmap, commission over
days, merchants' usual volume) do not depend on old rows still being
buffered. Everything is keyed by EVENT time (the transaction's own
timestamp), by minute `ts_ms // 60_000`, in two tables:

- cube: per minute and per combination of merchant category, payment
  method, status, commission type and validity (every sidebar filter except
  the merchant can narrow it, in any combination);
- merchants: per 5-minute bucket (MERCHANT_MINUTES) and per merchant,
  merchant category and commission type. Five minutes is the grain of every
  merchant question (top merchants and volume jumps in 5-minute windows) and
  keeps the table up to five times smaller than per minute.

Each row holds `count` (transactions), `amount` and `commission` (sums of the
known values; an unknown amount adds 0). Besides, each customer's first and
last minute seen, for "new versus returning".

Skipped (and counted in `skipped`): rows without an event time (ts_ms < 0),
older than the horizon (`days` before the clock's now) or more than
FUTURE_MINUTES ahead of it.

Storage and cost (`dashboard.store.hourblocks`). Each table keeps one block per
clock hour: one row per (time slot, dimension codes) seen, sorted by that key
packed into an int64. `add` groups a batch with numpy (np.unique over the
packed keys, bincount for the sums) and merges every touched hour block the
same way: O(batch + rows of the touched blocks), and a block holds at most
60 minutes x the combinations seen in them. Blocks older than the horizon
are dropped whole (so `days` plus the current hour are kept); customer and
merchant ids not seen since are forgotten once they make up most of their
dictionary, so the dictionaries stay bounded too.

Memory and time, measured with Pulse's own event functions at EVENT_RATE 100
over the full 8 days (1.17 M transactions; `nbytes()`, which tracemalloc
confirms within 4 %): about 30 bytes a row. 50 merchants: cube 353 k rows +
merchant table 109 k rows = 13.6 MB; 500 merchants: 396 k + 610 k rows =
29.9 MB. The cube is bounded by its 960 combinations per minute whatever the
rate, the merchant table by the merchants (times the categories and
commission types they use) per 5 minutes, and both by the transactions.
`add` costs about 1.3-1.5 us a row, two thirds of it encoding the strings
(decoding a message costs the feed about 4.6 us); a snapshot after a change
about 10-20 ms at those sizes.

API: `add(batch)` (the feed, after `buffer.append`), `add_snapshot(snapshot,
start)` (rows of a buffer snapshot, for sources without a feed),
`snapshot()` -> `RollupSnapshot` (`cube`, `merchants` DataFrames built on
first use, `first_seen`, `span_minutes()`, counts), `rows()`, `ids()`, `nbytes()`.
Thread safety: one writer (the feed thread) calls `add`; any thread calls
`snapshot()`, which is immutable and rebuilt only after a change.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from dashboard.core.schema import COMMISSION_TYPES, MERCHANT_CATEGORIES, PAYMENT_METHODS, STATUSES
from dashboard.core.timeunits import DAY_MINUTES, MINUTE_MS
from dashboard.store.buffer import Batch, Dictionary, Snapshot
from dashboard.store.hourblocks import HourBlocks

HOUR_MINUTES = 60
ROLLUP_DAYS = 8
MERCHANT_MINUTES = 5
FUTURE_MINUTES = 5
#: Dictionaries of ids are compacted only beyond this size (and when most ids are stale).
COMPACT_MIN_IDS = 4096
#: Bits of a merchant code in the packed key (a minute needs 25 bits until 2033, 26 until 2097).
MERCHANT_BITS = 31

#: Enum dimensions: name -> values; code 0 is missing or unknown, code i + 1 is values[i].
ENUMS: dict[str, tuple[str, ...]] = {
    "merchant_category": MERCHANT_CATEGORIES,
    "payment_method": PAYMENT_METHODS,
    "status": STATUSES,
    "commission_type": COMMISSION_TYPES,
}
CUBE_DIMS = ("merchant_category", "payment_method", "status", "commission_type", "valid")
MERCHANT_DIMS = ("merchant_id", "merchant_category", "commission_type")
MEASURES = ("count", "amount", "commission")
_LOOKUP: dict[str, dict[str | None, int]] = {
    name: {v: i + 1 for i, v in enumerate(values)} for name, values in ENUMS.items()
}
_CATEGORIES = {name: pd.Index(["", *values]) for name, values in ENUMS.items()}


def _bits(values: int) -> int:
    """Bits needed for codes 0 .. values - 1."""
    return max(1, (values - 1).bit_length())


def enum_codes(values: Sequence[str | None], name: str) -> np.ndarray:
    """Return the int8 codes of an enum column's values (0 for missing or unknown)."""
    return np.fromiter(map(_LOOKUP[name].get, values, itertools.repeat(0)), dtype=np.int8, count=len(values))


def enum_table(dictionary: Sequence[str], name: str) -> np.ndarray:
    """Return our code for each code of a buffer dictionary of enum `name`."""
    return enum_codes(list(dictionary), name)


@dataclass(frozen=True, eq=False)
class RollupSnapshot:
    """Immutable rollups at one instant; the two tables are laid out as DataFrames on first use.

    `cube`: minute (epoch minutes, int64), merchant_category, payment_method,
    status, commission_type (Categoricals, "" for missing), valid (bool),
    count, amount, commission. `merchants`: minute (first minute of the
    5-minute bucket), merchant_id, merchant_category, commission_type, count,
    amount, commission. Both sorted by their key: minute, then the dimensions
    in order; their columns are read-only. `first_seen`: customer_id -> first
    minute seen. `horizon_minute`: the oldest minute still accepted.
    """

    first_seen: pd.Series
    version: int
    added: int
    skipped: int
    horizon_minute: int
    cube_parts: list[tuple[np.ndarray, ...]] = field(repr=False)
    merchant_parts: list[tuple[np.ndarray, ...]] = field(repr=False)
    merchant_ids: tuple[str, ...] = field(repr=False)

    @cached_property
    def cube(self) -> pd.DataFrame:
        """The cube as a DataFrame (built once per snapshot: a page that needs no table pays nothing)."""
        return _frame(self.cube_parts, CUBE_DIMS, {})

    @cached_property
    def merchants(self) -> pd.DataFrame:
        """The merchant table as a DataFrame (built once per snapshot)."""
        return _frame(self.merchant_parts, MERCHANT_DIMS, {"merchant_id": self.merchant_ids})

    @property
    def empty(self) -> bool:
        """True when no transaction is rolled up."""
        return not self.cube_parts

    @cached_property
    def _span(self) -> tuple[int, int] | None:
        if self.empty:
            return None
        # Blocks are hours in order: the first and the last block with a valid row hold the span's ends.
        with_valid = [(part[0], part[len(CUBE_DIMS)] != 0) for part in self.cube_parts]
        with_valid = [(minutes[valid], valid) for minutes, valid in with_valid if valid.any()]
        if not with_valid:
            return int(self.cube_parts[0][0].min()), int(self.cube_parts[-1][0].max())
        return int(with_valid[0][0].min()), int(with_valid[-1][0].max())

    def span_minutes(self) -> tuple[int, int] | None:
        """Return the first and last minute with a valid transaction (with any, when none is valid); None when empty.

        Invalid rows are left out because a time-warped one (ERR_TIME) may lie
        days before the rest and would stretch every chart's time axis.
        """
        return self._span


class Rollups:
    """Per-minute sums of transactions for `days` of event time; see the module docstring.

    `clock` (epoch seconds) decides the horizon: inject one in tests.
    """

    def __init__(self, days: float = ROLLUP_DAYS, clock: Callable[[], float] = time.time) -> None:
        if days <= 0:
            raise ValueError("days must be positive")
        self.days = days
        self.clock = clock
        self._lock = threading.Lock()
        self._cube = HourBlocks((*(_bits(len(ENUMS[name]) + 1) for name in CUBE_DIMS[:-1]), 1), 1)
        self._merchants = HourBlocks(
            (MERCHANT_BITS, _bits(len(ENUMS["merchant_category"]) + 1), _bits(len(ENUMS["commission_type"]) + 1)),
            MERCHANT_MINUTES,
        )
        self._merchant_ids = Dictionary()
        self._customer_ids = Dictionary()
        self._first = np.empty(0, dtype=np.int64)  # by customer code; int64 max: never seen
        self._last = np.empty(0, dtype=np.int64)
        self._version = 0
        self._added = 0
        self._skipped = 0
        self._cached: RollupSnapshot | None = None

    @property
    def version(self) -> int:
        """Changes whenever the sums change (adds and evictions)."""
        return self._version

    def horizon_minute(self) -> int:
        """The oldest minute kept now: `days` before the clock's minute."""
        return self._now_minute() - round(self.days * DAY_MINUTES)

    def _now_minute(self) -> int:
        return int(self.clock() * 1000) // MINUTE_MS

    # -- writing ----------------------------------------------------------------------
    def add(self, batch: Batch) -> None:
        """Roll up a batch of decoded transactions (the feed calls this after `buffer.append`)."""
        if len(batch) == 0:
            return
        strings = batch.strings
        enums = [enum_codes(strings[name], name) for name in CUBE_DIMS[:-1]]
        with self._lock:
            now = self._start_add()
            merchants = self._merchant_ids.encode(strings["merchant_id"])
            customers = self._customer_ids.encode(strings["customer_id"])
            self._add(now, batch.numeric, enums, merchants, customers)

    def add_snapshot(self, snapshot: Snapshot, start: int = 0) -> None:
        """Roll up the rows `start:` of a buffer snapshot (for sources without a feed of their own)."""
        rows = slice(start, None)
        if len(snapshot) <= start:
            return
        codes, dicts = snapshot.codes, snapshot.dictionaries
        enums = [enum_table(dicts[name], name)[codes[name][rows]] for name in CUBE_DIMS[:-1]]
        numeric = {
            name: snapshot.numeric[name][rows] for name in ("ts_ms", "error_mask", "amount", "commission_amount")
        }
        with self._lock:
            now = self._start_add()
            merchants = self._merchant_ids.encode(dicts["merchant_id"])[codes["merchant_id"][rows]]
            customers = self._customer_ids.encode(dicts["customer_id"])[codes["customer_id"][rows]]
            self._add(now, numeric, enums, merchants, customers)

    def _start_add(self) -> int:
        """Evict what the horizon passed (before encoding ids: eviction may renumber them); return now's minute."""
        now = self._now_minute()
        self._evict(now - round(self.days * DAY_MINUTES))  # so an id back after the horizon counts as new
        return now

    def _add(
        self,
        now: int,
        numeric: Mapping[str, np.ndarray],
        enums: list[np.ndarray],
        merchants: np.ndarray,
        customers: np.ndarray,
    ) -> None:
        """Add rows given our codes for the enums, merchants and customers; the caller holds the lock."""
        ts = np.asarray(numeric["ts_ms"], dtype=np.int64)
        minute = ts // MINUTE_MS
        keep = (ts >= 0) & (minute >= now - round(self.days * DAY_MINUTES)) & (minute <= now + FUTURE_MINUTES)
        kept = int(np.count_nonzero(keep))
        self._skipped += len(ts) - kept
        if not kept:
            return
        minute = minute[keep]
        valid = (np.asarray(numeric["error_mask"])[keep] == 0).astype(np.int8)
        dims = [e[keep] for e in enums]
        amount = np.asarray(numeric["amount"], dtype=np.float64)[keep]
        commission = np.asarray(numeric["commission_amount"], dtype=np.float64)[keep]
        amount = np.where(np.isfinite(amount), amount, 0.0)
        commission = np.where(np.isfinite(commission), commission, 0.0)
        self._cube.add(minute, [*dims, valid], amount, commission)
        self._merchants.add(minute, [merchants[keep], dims[0], dims[3]], amount, commission)
        self._seen(customers[keep], minute)
        self._added += kept
        self._version += 1

    def _seen(self, customer: np.ndarray, minute: np.ndarray) -> None:
        size = len(self._customer_ids.values)
        if len(self._first) < size:  # grow by doubling
            grown = max(size, 2 * len(self._first), 1024)
            self._first = np.concatenate([self._first, np.full(grown - len(self._first), np.iinfo(np.int64).max)])
            self._last = np.concatenate([self._last, np.full(grown - len(self._last), -1, dtype=np.int64)])
        np.minimum.at(self._first, customer, minute)
        np.maximum.at(self._last, customer, minute)

    def _evict(self, horizon: int) -> None:
        """Drop hour blocks before the horizon's hour, then compact stale ids; caller holds the lock."""
        hour = horizon // HOUR_MINUTES
        dropped = self._cube.evict(hour)
        dropped = self._merchants.evict(hour) or dropped
        if not dropped:
            return
        self._version += 1
        self._compact_customers(horizon)
        self._compact_merchants()

    def _compact_customers(self, horizon: int) -> None:
        size = len(self._customer_ids.values)
        live = np.flatnonzero(self._last[:size] >= horizon)
        live = live[live > 0]
        if size < COMPACT_MIN_IDS or 2 * len(live) > size:
            return
        values = self._customer_ids.values
        fresh = Dictionary()
        fresh.encode([values[i] for i in live.tolist()])
        self._first = np.concatenate([self._first[:1], self._first[live]])
        self._last = np.concatenate([self._last[:1], self._last[live]])
        self._customer_ids = fresh

    def _compact_merchants(self) -> None:
        size = len(self._merchant_ids.values)
        if size < COMPACT_MIN_IDS:
            return
        used = np.zeros(size, dtype=bool)
        for block in self._merchants.blocks.values():
            used[block.columns[1]] = True
        used[0] = True
        if 2 * int(used.sum()) > size:
            return
        keep = np.flatnonzero(used)
        remap = np.zeros(size, dtype=np.int32)
        remap[keep] = np.arange(len(keep))
        self._merchants.remap(0, remap)
        values = self._merchant_ids.values
        fresh = Dictionary()
        fresh.encode([values[i] for i in keep.tolist()[1:]])
        self._merchant_ids = fresh

    # -- reading ----------------------------------------------------------------------
    def rows(self) -> tuple[int, int]:
        """Rows of the cube and of the merchant table."""
        with self._lock:
            return self._cube.rows(), self._merchants.rows()

    def ids(self) -> tuple[int, int]:
        """Merchant and customer ids remembered (the empty id included)."""
        with self._lock:
            return len(self._merchant_ids.values), len(self._customer_ids.values)

    def nbytes(self) -> int:
        """Bytes held by the tables, the customer arrays and the id dictionaries."""
        with self._lock:
            ids = sum(len(v) + 57 for d in (self._merchant_ids, self._customer_ids) for v in d.values)
            return self._cube.nbytes() + self._merchants.nbytes() + self._first.nbytes + self._last.nbytes + ids

    def snapshot(self) -> RollupSnapshot:
        """Return the rollups as immutable DataFrames; reused while nothing changed."""
        with self._lock:
            self._evict(self.horizon_minute())
            cached = self._cached
            if cached is not None and cached.version == self._version:
                return cached
            version = self._version
            cube_parts = self._cube.columns()
            merchant_parts = self._merchants.columns()
            merchant_ids = tuple(self._merchant_ids.values)
            customer_ids = tuple(self._customer_ids.values)
            first = self._first[: len(customer_ids)].copy()
            added, skipped, horizon = self._added, self._skipped, self.horizon_minute()
        snap = RollupSnapshot(
            first_seen=_first_seen(customer_ids, first),
            version=version,
            added=added,
            skipped=skipped,
            horizon_minute=horizon,
            cube_parts=cube_parts,
            merchant_parts=merchant_parts,
            merchant_ids=merchant_ids,
        )
        with self._lock:
            if self._version == version:
                self._cached = snap
        return snap

    @classmethod
    def of_snapshot(
        cls, snapshot: Snapshot, days: float = ROLLUP_DAYS, clock: Callable[[], float] = time.time
    ) -> Rollups:
        """Return rollups of every row of a buffer snapshot."""
        rollups = cls(days, clock)
        rollups.add_snapshot(snapshot)
        return rollups


def _frame(
    parts: list[tuple[np.ndarray, ...]], names: tuple[str, ...], dictionaries: dict[str, tuple[str, ...]]
) -> pd.DataFrame:
    """Lay blocks' columns out as one DataFrame: minute, one column per dimension, the sums."""
    if parts:
        # Fresh arrays, even of one block; minute widened: minute * MINUTE_MS must not overflow.
        columns = [
            np.concatenate(same, dtype=np.int64 if i == 0 else None) for i, same in enumerate(zip(*parts, strict=True))
        ]
    else:
        columns = [np.empty(0, np.int64), *(np.empty(0, np.int8) for _ in names), np.empty(0, np.int32)]
        columns += [np.empty(0), np.empty(0)]
    minute, *dims, count, amount, commission = columns
    data: dict[str, object] = {"minute": minute}
    for name, codes in zip(names, dims, strict=True):
        if name == "valid":
            data[name] = codes.astype(bool)
            continue
        categories = _CATEGORIES[name] if name in _CATEGORIES else pd.Index(dictionaries[name])
        data[name] = pd.Categorical.from_codes(codes, categories=categories, validate=False)
    data.update(count=count, amount=amount, commission=commission)
    for values in data.values():
        if isinstance(values, np.ndarray):
            values.flags.writeable = False  # the frame's columns: writing to them raises
    return pd.DataFrame(data, copy=False)  # fresh arrays: no copy, no consolidation


def _first_seen(customer_ids: tuple[str, ...], first: np.ndarray) -> pd.Series:
    seen = np.flatnonzero(first < np.iinfo(np.int64).max)
    seen = seen[seen > 0]  # code 0: no customer id
    index = pd.Index([customer_ids[i] for i in seen.tolist()], dtype=object, name="customer_id")
    return pd.Series(first[seen], index=index, name="first_minute", dtype=np.int64)
