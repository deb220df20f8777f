"""Per-minute aggregates of transactions, as the ingest workers write them to darooghe.rollups. Pure, no Kafka.

`MinuteAggregator` keeps one open RUN per minute of event time touched
recently, over every partition its worker owns: counts and sums by cube
cell (merchant category, payment method, status, commission type,
validity), counts by error code, and sums per merchant. `flush()` returns
the records of the runs changed since the last flush, cumulative
(`dashboard.core.rollup`), for the worker to produce in the transaction
that commits their offsets; then runs beyond `max_open` are closed, least
recently touched first (a later transaction of that minute opens a new
run, with a new id). `reset()` forgets every open run: call it when a
transaction aborts (its contributions never counted, and the runs'
committed values stay valid under their own keys), and `drop(partitions)`
when partitions are revoked or lost (after their transaction committed or
aborted: a run mixes partitions, so every run closes).

A run spans the worker's partitions rather than one partition: on a stream
of a few events per partition and minute (Pulse's default 100 a minute, or
a week of history), runs per partition made a record of every few
messages, and building them was a sixth of the worker's time.

Skipped (counted in `skipped`): messages without an event time, or with a
negative one. Strings of merchant ids are cut at MAX_ID_CHARS.

Bounded whatever the number of distinct merchants: a run keeps the sums of
at most `max_merchants` merchants (MAX_RUN_MERCHANTS); the transactions of
merchants new to a run beyond that are summed under "" for their cell, as
the record sums all merchants beyond its top ones, so totals stay exact.
(A stream of distinct merchant ids, 600,000 in a minute, held 190 MB in one
run: bench/soak.py --step-ms 0.1.) Such a merchant cannot be one of that
run's top merchants: Darooghe's 500 never come near the bound.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from dashboard.core.rollup import (
    ENUM_CODES,
    FORMAT,
    MERCHANT_CELL_BITS,
    RollupRecord,
    encode,
    pack_cell,
    packed,
    record_key,
)
from dashboard.core.schema import ERROR_CODES
from dashboard.core.timeunits import MINUTE_MS
from dashboard.core.validation import Checked, PlainTransaction, decode_plain

TOP_MERCHANTS = 20  # merchants kept by count, and by amount, per record
MAX_OPEN = 32  # open runs (minutes)
MAX_RUN_MERCHANTS = 5_000  # merchants a run keeps sums of (the rest are summed under "")
MAX_ID_CHARS = 200
_ERROR_INDEX = {code: i for i, code in enumerate(ERROR_CODES)}
_CATEGORY, _METHOD = ENUM_CODES["merchant_category"], ENUM_CODES["payment_method"]
_STATUS, _CTYPE = ENUM_CODES["status"], ENUM_CODES["commission_type"]
_K = TypeVar("_K")
#: (category, method, status, commission type) of a valid transaction -> (its cube cell, its merchant cell).
_VALID_CELLS: dict[tuple[str, str, str, str], tuple[int, int]] = {
    (category, method, status, ctype): (
        pack_cell((cat, m, st, ct, 1)),  # built once: the hot path only looks the cells up
        pack_cell((cat, ct), MERCHANT_CELL_BITS),
    )
    for category, cat in _CATEGORY.items()
    for method, m in _METHOD.items()
    for status, st in _STATUS.items()
    for ctype, ct in _CTYPE.items()
}


def random_runs() -> Callable[[], str]:
    """Run ids: one random 64-bit prefix per aggregator, then a counter (unique without a syscall per run)."""
    prefix = os.urandom(8).hex()
    counter = itertools.count()
    return lambda: f"{prefix}{next(counter):x}"


def _accumulate(table: dict[_K, list[float]], key: _K, amount: float, commission: float) -> None:
    """Count one transaction in `table[key]`: [count, amount, commission] sums."""
    sums = table.get(key)
    if sums is None:
        table[key] = [1, amount, commission]
    else:
        sums[0] += 1
        sums[1] += amount
        sums[2] += commission


class _Run:
    __slots__ = ("cube", "dirty", "errors", "id", "merchants", "partition", "touched")

    def __init__(self, run_id: str, partition: int) -> None:
        self.id = run_id
        self.partition = partition  # the first partition it counts: the record's (informative) partition
        self.cube: dict[int, list[float]] = {}  # cell -> [count, amount, commission]
        self.errors = [0] * len(ERROR_CODES)
        self.merchants: dict[tuple[str, int], list[float]] = {}  # (merchant, merchant cell) -> sums
        self.dirty = False
        self.touched = 0


def _columns(rows: list[Any], width: int) -> tuple[tuple[Any, ...], ...]:
    """The columns of `rows` (tuples of `width` fields), built in C by zip."""
    return tuple(zip(*rows, strict=True)) if rows else ((),) * width


def _number(value: object) -> float:
    """A finite amount as float; anything else (None, NaN, a huge int) adds 0."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return out if out - out == 0 else 0.0


class MinuteAggregator:
    """Cumulative per-minute aggregates of the partitions one worker owns; see the module docstring.

    `top`: merchants kept per record by count and by amount (None: all);
    `max_merchants`: merchants a run keeps sums of (see the module
    docstring); `new_run`: run ids (random by default); `clock`: epoch
    seconds, only to cap record timestamps at now.
    """

    def __init__(
        self,
        top: int | None = TOP_MERCHANTS,
        max_open: int = MAX_OPEN,
        new_run: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.time,
        max_merchants: int = MAX_RUN_MERCHANTS,
    ) -> None:
        self.top = top
        self.max_open = max_open
        self.max_merchants = max_merchants
        self.new_run = new_run or random_runs()
        self.clock = clock
        self._runs: dict[int, _Run] = {}  # minute -> its open run
        self._flushes = 0
        self.skipped = 0

    def __len__(self) -> int:
        return len(self._runs)

    def add_message(
        self, partition: int, value: bytes | None, kafka_ts_ms: int, checked: Checked | None, skew_ms: int
    ) -> None:
        """Add one consumed message: `checked` is None for a valid one (decoded here), else its full judgement."""
        if checked is None:
            tx = decode_plain(value, kafka_ts_ms, skew_ms) if value else None
            if tx is None:  # cannot happen for a message judged valid; count it, never raise
                self.skipped += 1
                return
            self.add_valid(partition, tx)
        else:
            self.add_checked(partition, checked)

    def add_valid(self, partition: int, tx: PlainTransaction) -> None:
        """Add a transaction the fast path passed (valid): `add` with its enums known, the worker's hot path."""
        ts_ms = tx.timestamp_ms
        cell = _VALID_CELLS.get((tx.merchant_category, tx.payment_method, tx.status, tx.commission_type))
        if cell is None or ts_ms < 0:  # neither happens to a valid transaction; `add` handles any fields
            self.add(
                partition,
                ts_ms,
                tx.merchant_id,
                tx.merchant_category,
                tx.payment_method,
                tx.status,
                tx.commission_type,
                tx.amount,
                tx.commission_amount,
                (),
            )
            return
        # `_run` and `_accumulate` inlined: this runs for nearly every message the worker reads.
        run = self._runs.get(ts_ms // MINUTE_MS)
        if run is None or not run.dirty:
            run = self._run(partition, ts_ms // MINUTE_MS)
        a, c = float(tx.amount), float(tx.commission_amount)  # int64s (PlainTransaction): finite
        sums = run.cube.get(cell[0])
        if sums is None:
            run.cube[cell[0]] = [1, a, c]
        else:
            sums[0] += 1
            sums[1] += a
            sums[2] += c
        key = (tx.merchant_id[:MAX_ID_CHARS], cell[1])
        merchants = run.merchants
        sums = merchants.get(key)
        if sums is None:
            if len(merchants) < self.max_merchants:
                merchants[key] = [1, a, c]
            else:  # a full run: a merchant new to it is summed with the rest of its cell
                _accumulate(merchants, ("", cell[1]), a, c)
        else:
            sums[0] += 1
            sums[1] += a
            sums[2] += c

    def _run(self, partition: int, minute: int) -> _Run:
        """The open run of `minute`, opened if none (by a message of `partition`); marked dirty, touched now.

        "Now" is the number of flushes so far: runs beyond max_open close least
        recently touched first, by transaction, older minutes first.
        """
        run = self._runs.get(minute)
        if run is None:
            run = self._runs[minute] = _Run(self.new_run(), partition)
        run.touched = self._flushes
        run.dirty = True
        return run

    def add_checked(self, partition: int, checked: Checked) -> None:
        """Add a message the full check judged (invalid, or valid but off the fast path)."""
        t = checked.transaction
        if t is None:
            self.skipped += 1
            return
        self.add(
            partition,
            t.timestamp_ms,
            t.merchant_id,
            t.merchant_category,
            t.payment_method,
            t.status,
            t.commission_type,
            t.amount,
            t.commission_amount,
            checked.codes,
        )

    def add(
        self,
        partition: int,
        ts_ms: int | None,
        merchant: str | None,
        category: str | None,
        method: str | None,
        status: str | None,
        ctype: str | None,
        amount: object,
        commission: object,
        codes: Iterable[str],
    ) -> None:
        """Add one transaction's fields (codes: its error codes, none when valid)."""
        if ts_ms is None or ts_ms < 0:
            self.skipped += 1
            return
        run = self._run(partition, ts_ms // MINUTE_MS)
        valid = 1
        errors = run.errors
        for code in codes:
            valid = 0
            index = _ERROR_INDEX.get(code)
            if index is not None:
                errors[index] += 1
        cat, ct = _CATEGORY.get(category or "", 0), _CTYPE.get(ctype or "", 0)
        a, c = _number(amount), _number(commission)
        cell = (
            ((((cat << 3) | _METHOD.get(method or "", 0)) << 2 | _STATUS.get(status or "", 0)) << 2 | ct) << 1
        ) | valid
        _accumulate(run.cube, cell, a, c)
        m_cell = (cat << MERCHANT_CELL_BITS[1]) | ct
        key = ((merchant or "")[:MAX_ID_CHARS], m_cell)
        if key not in run.merchants and len(run.merchants) >= self.max_merchants:
            key = ("", m_cell)  # a full run: a merchant new to it is summed with the rest of its cell
        _accumulate(run.merchants, key, a, c)

    def flush(self) -> list[tuple[bytes, bytes, int]]:
        """Return (key, value, timestamp ms) of every run changed since the last flush; close runs beyond max_open.

        The timestamp is the minute's end, at most now, so time retention
        ages records by event time.
        """
        now_ms = int(self.clock() * 1000)
        out = []
        for minute, run in self._runs.items():
            if run.dirty:
                run.dirty = False
                record = self.record(run.partition, minute, run)
                ts = max(0, min(now_ms, (minute + 1) * MINUTE_MS))
                out.append((record_key(minute, run.partition, run.id), encode(record), ts))
        self._close_oldest()
        self._flushes += 1
        return out

    def record(self, partition: int, minute: int, run: _Run) -> RollupRecord:
        """The cumulative record of one run (built once per run and transaction: kept lean)."""
        cells, counts, amounts, commissions = _columns(sorted((cell, *sums) for cell, sums in run.cube.items()), 4)
        merchants, m_cells, m_counts, m_amounts, m_commissions = _columns(self._merchant_rows(run.merchants), 5)
        return RollupRecord(
            FORMAT,
            minute,
            partition,
            run.id,
            int(sum(counts)),  # ints: _accumulate counts by 1
            packed("H", cells),
            packed("I", counts),
            packed("d", amounts),
            packed("d", commissions),
            list(run.errors),
            list(merchants),
            packed("H", m_cells),
            packed("I", m_counts),
            packed("d", m_amounts),
            packed("d", m_commissions),
        )

    def _merchant_rows(
        self, merchants: dict[tuple[str, int], list[float]]
    ) -> list[tuple[str, int, float, float, float]]:
        """Rows (merchant, merchant cell, count, amount, commission): the top merchants by count and by amount,
        sorted, then the rest summed per merchant cell (category, commission type) under "", so totals stay exact."""
        if (self.top is None or len(merchants) <= self.top) and all(key[0] for key in merchants):
            # Every merchant kept and each has an id (the usual run): the rows as they are.
            return sorted((m, cell, n, a, c) for (m, cell), (n, a, c) in merchants.items())
        items = list(merchants.items())
        if self.top is not None and len(items) > self.top:
            # Ties go to the larger key; plain tuples compare faster than a key function.
            # sorted()[:top] is nlargest's selection, in C (heapq.nlargest loops in Python).
            top = self.top
            kept = {key for _, key in sorted([(sums[0], key) for key, sums in items], reverse=True)[:top]}
            kept.update(key for _, key in sorted([(sums[1], key) for key, sums in items], reverse=True)[:top])
        else:
            kept = {k for k, _ in items}
        rows: list[tuple[str, int, float, float, float]] = []
        other: dict[int, list[float]] = {}
        for (merchant, cell), (n, a, c) in items:
            if merchant and (merchant, cell) in kept:
                rows.append((merchant, cell, n, a, c))
                continue
            sums = other.setdefault(cell, [0, 0.0, 0.0])
            sums[0] += n
            sums[1] += a
            sums[2] += c
        rows.sort()
        rows.extend(("", cell, n, a, c) for cell, (n, a, c) in sorted(other.items()))
        return rows

    def _close_oldest(self) -> None:
        runs = self._runs
        if len(runs) > self.max_open:
            for _, minute in sorted((run.touched, minute) for minute, run in runs.items())[: len(runs) - self.max_open]:
                del runs[minute]

    def reset(self) -> None:
        """Forget every open run (after an aborted transaction)."""
        self._runs.clear()

    def drop(self, partitions: Iterable[int]) -> None:
        """`partitions` were revoked or lost (their transaction ended): close every open run (runs mix partitions)."""
        if any(True for _ in partitions):
            self._runs.clear()
