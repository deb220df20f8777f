"""The workers' per-minute aggregates: records, top merchants with an exact remainder, runs, hostile values."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.rollup import Invalid, RollupRecord, decode, pack_cell, unpack_cell
from dashboard.store.aggregate import MinuteAggregator
from dashboard.store.rollups import Rollups

NOW_MS = 1_767_225_600_000
MINUTE = NOW_MS // 60_000 - 10


def fixed_runs() -> MinuteAggregator:
    ids = iter(f"run{i}" for i in range(1000))
    return MinuteAggregator(top=2, max_open=2, new_run=lambda: next(ids), clock=lambda: NOW_MS / 1000)


def add(agg: MinuteAggregator, merchant: str, amount: float = 100, minute: int = MINUTE, partition: int = 0) -> None:
    agg.add(partition, minute * 60_000 + 5, merchant, "retail", "pos", "approved", "flat", amount, 2, ())


def records(agg: MinuteAggregator) -> list[RollupRecord]:
    out = []
    for _, value, _ in agg.flush():
        rec = decode(value)
        assert isinstance(rec, RollupRecord)
        out.append(rec)
    return out


def merchant_rows(rec: RollupRecord) -> dict[str, tuple[int, float]]:
    counts = np.frombuffer(rec.m_counts, "<u4").tolist()
    amounts = np.frombuffer(rec.m_amounts, "<f8").tolist()
    return {m: (c, a) for m, c, a in zip(rec.merchants, counts, amounts, strict=True)}


def test_top_merchants_by_count_and_by_amount_with_an_exact_remainder() -> None:
    agg = fixed_runs()
    for merchant, n, amount in (("a", 5, 1), ("b", 4, 1), ("c", 3, 1), ("d", 1, 1000), ("e", 1, 900), ("f", 1, 5)):
        for _ in range(n):
            add(agg, merchant, amount)
    (rec,) = records(agg)
    rows = merchant_rows(rec)
    # Top 2 by count (a, b) and by amount (d, e); c and f make up the remainder "".
    assert rows == {"a": (5, 5.0), "b": (4, 4.0), "d": (1, 1000.0), "e": (1, 900.0), "": (4, 8.0)}
    assert rec.count == 15 == sum(c for c, _ in rows.values())
    assert rec.errors == [0, 0, 0, 0]


def test_records_are_cumulative_per_run_and_only_changed_runs_are_flushed() -> None:
    agg = fixed_runs()
    add(agg, "a")
    (first,) = records(agg)
    assert records(agg) == []  # nothing changed
    add(agg, "a")
    (second,) = records(agg)
    assert (second.run, second.count) == (first.run, 2)  # the same run, its cumulative value


def test_runs_beyond_max_open_close_and_a_later_message_opens_a_new_run() -> None:
    agg = fixed_runs()
    for m in (MINUTE, MINUTE + 1, MINUTE + 2):
        add(agg, "a", minute=m)
    assert [r.minute for r in records(agg)] == [MINUTE, MINUTE + 1, MINUTE + 2]
    assert len(agg) == 2  # the least recently touched (MINUTE) closed after its record was flushed
    add(agg, "a", minute=MINUTE)
    (rec,) = records(agg)
    assert (rec.run, rec.count) == ("run3", 1)  # a new run: its own key, adding up with run0


def test_reset_forgets_open_runs_and_the_committed_runs_still_add_up() -> None:
    rollups = Rollups(clock=lambda: NOW_MS / 1000)
    agg = fixed_runs()
    add(agg, "a")
    rollups.apply(records(agg))  # committed: run0 = 1
    add(agg, "a")
    records(agg)  # run0 = 2 produced into a transaction that aborts: never applied
    agg.reset()
    add(agg, "a")  # the re-read
    rollups.apply(records(agg))
    assert rollups.snapshot().added == 2


def test_rows_without_event_time_are_skipped_and_errors_counted() -> None:
    agg = fixed_runs()
    agg.add(0, None, "a", "retail", "pos", "approved", "flat", 1, 1, ())
    agg.add(0, -5, "a", "retail", "pos", "approved", "flat", 1, 1, ())
    agg.add(1, MINUTE * 60_000, "x" * 500, "?", None, "approved", "flat", float("nan"), None, ("ERR_AMOUNT", "ERR_X"))
    assert agg.skipped == 2
    (rec,) = records(agg)
    assert rec.errors == [1, 0, 0, 0] and rec.merchants == ["x" * 200]
    cell = int(np.frombuffer(rec.cells, "<u2")[0])
    assert unpack_cell(cell) == (0, 0, 1, 1, 0)  # unknown category and method, invalid
    assert np.frombuffer(rec.amounts, "<f8").tolist() == [0.0]


def test_cells_round_trip() -> None:
    for codes in ((5, 4, 3, 3, 1), (0, 0, 0, 0, 0), (1, 2, 3, 0, 1)):
        assert unpack_cell(pack_cell(codes)) == codes


@given(st.binary(max_size=300))
def test_any_bytes_decode_to_a_record_or_invalid(value: bytes) -> None:
    assert isinstance(decode(value), RollupRecord | Invalid)


def test_unequal_columns_are_invalid_and_rollups_skip_them() -> None:
    agg = fixed_runs()
    add(agg, "a")
    (_, value, _) = agg.flush()[0]
    rec = decode(value)
    assert isinstance(rec, RollupRecord)
    broken = msgspec.msgpack.encode(msgspec.structs.replace(rec, counts=b"\x01"))
    assert isinstance(decode(broken), Invalid)
    rollups = Rollups(clock=lambda: NOW_MS / 1000)
    rollups.apply_values([broken, b"garbage", None, value])
    assert rollups.invalid == 3 and rollups.snapshot().added == 1


@pytest.mark.parametrize("top", [None, 1])
def test_totals_are_exact_whatever_the_top(top: int | None) -> None:
    agg = MinuteAggregator(top=top, clock=lambda: NOW_MS / 1000)
    rng = np.random.default_rng(1)
    for i in range(500):
        add(agg, f"m{rng.integers(0, 50)}", float(rng.integers(1, 1000)), minute=MINUTE + i % 3, partition=i % 2)
    rollups = Rollups(clock=lambda: NOW_MS / 1000)
    rollups.apply(records(agg))
    snap = rollups.snapshot()
    assert snap.added == 500 == int(snap.cube["count"].sum()) == int(snap.merchants["count"].sum())
    assert snap.cube["amount"].sum() == pytest.approx(snap.merchants["amount"].sum())


def test_a_run_keeps_at_most_max_merchants_and_sums_the_later_new_ones_under_the_remainder() -> None:
    agg = MinuteAggregator(top=3, clock=lambda: NOW_MS / 1000, max_merchants=10)
    for i in range(1000):  # a flood of distinct merchants: 8 first, then "a" and "b", then 990 more
        add(agg, f"m{i}" if i < 8 or i >= 10 else "ab"[i - 8], amount=1)
    add(agg, "a", amount=5000)  # already kept: still counted as itself
    add(agg, "late_big", amount=9000)  # new beyond the bound: under "", whatever its amount
    (run,) = agg._runs.values()
    assert len(run.merchants) == 11  # 10 merchants and the remainder of the cell
    (rec,) = records(agg)
    rows = merchant_rows(rec)
    assert rows["a"] == (2, 5001.0) and "late_big" not in rows
    assert rec.count == 1002 == sum(c for c, _ in rows.values())
    assert sum(a for _, a in rows.values()) == 1000 + 5000 + 9000


def test_a_run_counts_every_partition_of_its_minute_and_a_revoke_closes_every_run() -> None:
    agg = fixed_runs()
    add(agg, "a", partition=0)
    add(agg, "b", partition=3)
    (rec,) = records(agg)
    assert (rec.run, rec.partition, rec.count) == ("run0", 0, 2)  # one record for the minute, both partitions
    agg.drop([3])  # after the revoke's commit: runs mix partitions, so all close
    assert len(agg) == 0
    add(agg, "a", partition=0)
    (rec,) = records(agg)
    assert (rec.run, rec.count) == ("run1", 1)  # a new run, adding up with run0
    agg.drop([])
    assert len(agg) == 1  # nothing revoked: nothing closes
