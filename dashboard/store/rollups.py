"""Days of history from the per-minute aggregates of darooghe.rollups, in bounded memory. Pure.

The ring buffer holds the latest rows only; the ingest workers write
per-minute aggregates to darooghe.rollups (`dashboard.core.rollup`,
`dashboard.store.aggregate`), and the dashboard's rollup feed hands every
record it reads to `Rollups.apply`. So the historical charts (hourly volume,
the weekday heatmap, commission over days, merchants' usual volume) cover
ROLLUP_DAYS whatever the buffer holds, and again right after a restart of
either side. Everything is keyed by EVENT time, by minute, in two tables:

- cube: per minute and per combination of merchant category, payment
  method, status, commission type and validity (every sidebar filter except
  the merchant can narrow it, in any combination);
- merchants: per 5-minute bucket (MERCHANT_MINUTES) and per merchant,
  merchant category and commission type: the top merchants of each record,
  and merchant "" for the rest, so totals are exact.

Each row holds `count` (transactions), `amount` and `commission` (sums).

A record is the CUMULATIVE value of one run (key minute/partition/run; a run
spans its worker's partitions): a newer record of the same key replaces the
older one, and the runs of a minute add up. Records are kept per clock hour; a changed hour's summed
blocks (`dashboard.store.hourblocks`) are rebuilt at the next snapshot.
Hours older than `days` before the clock's now are dropped whole (records
that old, or more than FUTURE_MINUTES ahead, are skipped), and merchant ids
no record uses any more are forgotten once they make up most of their
dictionary. Memory: the records kept (about 24 bytes per cube row and 34
per merchant row) plus the summed blocks (about the same): with Pulse at
100 transactions a second on 3 partitions, about 150 cube rows and 45
merchant rows per partition and minute, 8 days cost about 0.4 GB... see
README ("Memory") for measured figures.

Thread safety: one writer (the rollup feed) calls `apply`; any thread calls
`snapshot()`, which is immutable and rebuilt only after a change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from dashboard.core.rollup import CELL_BITS, CUBE_DIMS, ENUMS, MERCHANT_CELL_BITS, RollupRecord, decode
from dashboard.core.timeunits import DAY_MINUTES, HOUR_MINUTES, MINUTE_MS
from dashboard.store.aggregate import MinuteAggregator
from dashboard.store.buffer import Dictionary, Snapshot
from dashboard.store.hourblocks import HourBlocks

ROLLUP_DAYS = 8
MERCHANT_MINUTES = 5
FUTURE_MINUTES = 5
#: Dictionaries of merchant ids are compacted only beyond this size (and when most ids are unused).
COMPACT_MIN_IDS = 4096
#: Bits of a merchant code in the packed key (a minute needs 25 bits until 2033, 26 until 2097).
MERCHANT_BITS = 31

MERCHANT_DIMS = ("merchant_id", "merchant_category", "commission_type")
MEASURES = ("count", "amount", "commission")
_CATEGORIES = {name: pd.Index(["", *values]) for name, values in ENUMS.items()}
__all__ = ["CUBE_DIMS", "ENUMS", "MINUTE_MS", "RollupSnapshot", "Rollups"]


def _unpack(cells: np.ndarray, bits: tuple[int, ...]) -> list[np.ndarray]:
    """Dimension codes of packed cells (`dashboard.core.rollup.pack_cell`), first dimension first."""
    out = []
    shift = sum(bits)
    for width in bits:
        shift -= width
        out.append(((cells >> shift) & ((1 << width) - 1)).astype(np.int8))
    return out


@dataclass(frozen=True, eq=False)
class _Part:
    """One record's rows as arrays (merchant ids as codes of the rollups' dictionary)."""

    minute: int
    count: int
    cells: np.ndarray
    counts: np.ndarray
    amounts: np.ndarray
    commissions: np.ndarray
    merchants: np.ndarray
    m_cells: np.ndarray
    m_counts: np.ndarray
    m_amounts: np.ndarray
    m_commissions: np.ndarray

    def nbytes(self) -> int:
        return sum(getattr(self, f).nbytes for f in ("cells", "counts", "amounts", "commissions")) + sum(
            getattr(self, f).nbytes for f in ("merchants", "m_cells", "m_counts", "m_amounts", "m_commissions")
        )


@dataclass(frozen=True, eq=False)
class RollupSnapshot:
    """Immutable rollups at one instant; the two tables are laid out as DataFrames on first use.

    `cube`: minute (epoch minutes, int64), merchant_category, payment_method,
    status, commission_type (Categoricals, "" for missing), valid (bool),
    count, amount, commission. `merchants`: minute (first minute of the
    5-minute bucket), merchant_id ("" for the merchants outside each
    record's top), merchant_category, commission_type, count, amount,
    commission. Both sorted by their key: minute, then the dimensions in
    order; their columns are read-only. `added`: transactions covered;
    `first_seen`: customer_id -> first minute (empty: the aggregates keep no
    customers). `horizon_minute`: the oldest minute still accepted.
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


_NO_CUSTOMERS = pd.Series([], index=pd.Index([], dtype=object, name="customer_id"), name="first_minute", dtype=np.int64)


class Rollups:
    """History of `days` of event time from darooghe.rollups records; see the module docstring.

    `clock` (epoch seconds) decides the horizon: inject one in tests.
    """

    def __init__(self, days: float = ROLLUP_DAYS, clock: Callable[[], float] = time.time) -> None:
        if days <= 0:
            raise ValueError("days must be positive")
        self.days = days
        self.clock = clock
        self._lock = threading.Lock()
        self._parts: dict[int, dict[bytes, _Part]] = {}  # hour -> record key -> its rows
        self._dirty: set[int] = set()  # hours whose blocks must be rebuilt
        self._cube = HourBlocks(CELL_BITS, 1)
        self._merchants = HourBlocks((MERCHANT_BITS, *MERCHANT_CELL_BITS), MERCHANT_MINUTES)
        self._merchant_ids = Dictionary()
        self._count = 0  # transactions in the records kept
        self._records = 0
        self._version = 0
        self._skipped = 0
        self.invalid = 0  # values that were not rollup records
        self._cached: RollupSnapshot | None = None

    @property
    def version(self) -> int:
        """Changes whenever the sums change (records applied and evictions)."""
        return self._version

    def horizon_minute(self) -> int:
        """The oldest minute kept now: `days` before the clock's minute."""
        return self._now_minute() - round(self.days * DAY_MINUTES)

    def _now_minute(self) -> int:
        return int(self.clock() * 1000) // MINUTE_MS

    # -- writing ----------------------------------------------------------------------
    def apply_values(self, values: Iterable[bytes | None]) -> None:
        """Apply record values read from darooghe.rollups; values that are not records are counted and skipped."""
        records = []
        for value in values:
            rec = decode(value)
            if isinstance(rec, RollupRecord):
                records.append(rec)
            else:
                self.invalid += 1
        self.apply(records)

    def apply(self, records: Iterable[RollupRecord]) -> None:
        """Apply records: each replaces the earlier record of its key (minute, partition, run)."""
        with self._lock:
            now = self._now_minute()
            horizon = now - round(self.days * DAY_MINUTES)
            self._evict(horizon)
            changed = False
            for rec in records:
                if not horizon <= rec.minute <= now + FUTURE_MINUTES:
                    self._skipped += 1
                    continue
                hour = rec.minute // HOUR_MINUTES
                parts = self._parts.setdefault(hour, {})
                key = f"{rec.minute}/{rec.partition}/{rec.run}".encode()
                part = self._part(rec)
                old = parts.get(key)
                if old is not None:
                    self._count -= old.count
                else:
                    self._records += 1
                parts[key] = part
                self._count += part.count
                self._dirty.add(hour)
                changed = True
            if changed:
                self._version += 1

    def clear(self) -> None:
        """Forget every record (the topic was recreated: its history starts again); `version` still grows."""
        with self._lock:
            self._parts.clear()
            self._dirty.clear()
            self._cube = HourBlocks(CELL_BITS, 1)
            self._merchants = HourBlocks((MERCHANT_BITS, *MERCHANT_CELL_BITS), MERCHANT_MINUTES)
            self._merchant_ids = Dictionary()
            self._count = self._records = self._skipped = 0
            self.invalid = 0
            self._version += 1
            self._cached = None

    def _part(self, rec: RollupRecord) -> _Part:
        counts = np.frombuffer(rec.counts, "<u4").astype(np.int64)
        return _Part(
            minute=rec.minute,
            count=int(counts.sum()),
            cells=np.frombuffer(rec.cells, "<u2").astype(np.int64),
            counts=counts,
            amounts=np.frombuffer(rec.amounts, "<f8"),
            commissions=np.frombuffer(rec.commissions, "<f8"),
            merchants=self._merchant_ids.encode(rec.merchants),
            m_cells=np.frombuffer(rec.m_cells, "<u2").astype(np.int64),
            m_counts=np.frombuffer(rec.m_counts, "<u4").astype(np.int64),
            m_amounts=np.frombuffer(rec.m_amounts, "<f8"),
            m_commissions=np.frombuffer(rec.m_commissions, "<f8"),
        )

    def _evict(self, horizon: int) -> None:
        """Drop hours before the horizon's hour, then compact unused merchant ids; caller holds the lock."""
        first_hour = horizon // HOUR_MINUTES
        old = [h for h in self._parts if h < first_hour]
        if not old:
            return
        for hour in old:
            for part in self._parts.pop(hour).values():
                self._count -= part.count
                self._records -= 1
            self._dirty.discard(hour)
        self._cube.evict(first_hour)
        self._merchants.evict(first_hour)
        self._version += 1
        self._compact_merchants()

    def _compact_merchants(self) -> None:
        size = len(self._merchant_ids.values)
        if size < COMPACT_MIN_IDS:
            return
        used = np.zeros(size, dtype=bool)
        for parts in self._parts.values():
            for part in parts.values():
                used[part.merchants] = True
        if 2 * int(used.sum()) > size:
            return
        table = self._merchant_ids.compact(np.flatnonzero(used))
        for hour, parts in self._parts.items():
            for key, part in parts.items():
                parts[key] = _Part(**{**part.__dict__, "merchants": table[part.merchants]})
            self._dirty.add(hour)

    def _rebuild(self) -> None:
        """Rebuild the summed blocks of changed hours; caller holds the lock."""
        for hour in sorted(self._dirty):
            parts = list(self._parts.get(hour, {}).values())
            if not parts:
                self._cube.replace(hour, *_empty(len(CELL_BITS)))
                self._merchants.replace(hour, *_empty(3))
                continue
            minute = np.concatenate([np.full(len(p.cells), p.minute, np.int64) for p in parts])
            cells = np.concatenate([p.cells for p in parts])
            self._cube.replace(
                hour,
                minute,
                _unpack(cells, CELL_BITS),
                np.concatenate([p.counts for p in parts]),
                np.concatenate([p.amounts for p in parts]),
                np.concatenate([p.commissions for p in parts]),
            )
            m_minute = np.concatenate([np.full(len(p.m_cells), p.minute, np.int64) for p in parts])
            m_cells = np.concatenate([p.m_cells for p in parts])
            self._merchants.replace(
                hour,
                m_minute,
                [np.concatenate([p.merchants for p in parts]), *_unpack(m_cells, MERCHANT_CELL_BITS)],
                np.concatenate([p.m_counts for p in parts]),
                np.concatenate([p.m_amounts for p in parts]),
                np.concatenate([p.m_commissions for p in parts]),
            )
        self._dirty.clear()

    # -- reading ----------------------------------------------------------------------
    def rows(self) -> tuple[int, int]:
        """Rows of the summed cube and merchant table (after pending rebuilds)."""
        with self._lock:
            self._rebuild()
            return self._cube.rows(), self._merchants.rows()

    def records(self) -> int:
        """Records (runs) kept."""
        with self._lock:
            return self._records

    def ids(self) -> int:
        """Merchant ids remembered (the empty id included)."""
        with self._lock:
            return len(self._merchant_ids.values)

    def nbytes(self) -> int:
        """Bytes held by the records, the summed tables and the merchant dictionary."""
        with self._lock:
            self._rebuild()
            parts = sum(p.nbytes() for parts in self._parts.values() for p in parts.values())
            ids = sum(len(v) + 57 for v in self._merchant_ids.values)
            return parts + self._cube.nbytes() + self._merchants.nbytes() + ids

    def snapshot(self) -> RollupSnapshot:
        """Return the rollups as immutable tables; reused while nothing changed."""
        with self._lock:
            self._evict(self.horizon_minute())
            cached = self._cached
            if cached is not None and cached.version == self._version:
                return cached
            self._rebuild()
            snap = RollupSnapshot(
                first_seen=_NO_CUSTOMERS,
                version=self._version,
                added=self._count,
                skipped=self._skipped,
                horizon_minute=self.horizon_minute(),
                cube_parts=self._cube.columns(),
                merchant_parts=self._merchants.columns(),
                merchant_ids=tuple(self._merchant_ids.values),
            )
            self._cached = snap
            return snap

    # -- without a rollups topic (tests, benchmarks, sources without a feed) ----------
    def add_snapshot(self, snapshot: Snapshot, start: int = 0) -> None:
        """Aggregate the rows `start:` of a buffer snapshot as a worker would (all merchants kept), and apply them."""
        if len(snapshot) <= start:
            return
        rows = slice(start, None)
        names = ("merchant_id", *CUBE_DIMS[:-1])
        strings = {
            n: np.asarray(snapshot.dictionaries[n], dtype=object)[snapshot.codes[n][rows]].tolist() for n in names
        }
        numeric = snapshot.numeric
        aggregator = MinuteAggregator(top=None, max_open=1 << 30, clock=self.clock)
        valid = (numeric["error_mask"][rows] == 0).tolist()
        for i, (ts, partition, amount, commission) in enumerate(
            zip(
                numeric["ts_ms"][rows].tolist(),
                numeric["partition"][rows].tolist(),
                numeric["amount"][rows].tolist(),
                numeric["commission_amount"][rows].tolist(),
                strict=True,
            )
        ):
            aggregator.add(
                partition,
                ts,
                strings["merchant_id"][i],
                strings["merchant_category"][i],
                strings["payment_method"][i],
                strings["status"][i],
                strings["commission_type"][i],
                amount,
                commission,
                () if valid[i] else ("invalid",),
            )
        self.apply_values(value for _, value, _ in aggregator.flush())

    @classmethod
    def of_snapshot(
        cls, snapshot: Snapshot, days: float = ROLLUP_DAYS, clock: Callable[[], float] = time.time
    ) -> Rollups:
        """Return rollups of every row of a buffer snapshot."""
        rollups = cls(days, clock)
        rollups.add_snapshot(snapshot)
        return rollups


def _empty(dims: int) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    return np.empty(0, np.int64), [np.empty(0, np.int64)] * dims, np.empty(0, np.int64), np.empty(0), np.empty(0)


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
