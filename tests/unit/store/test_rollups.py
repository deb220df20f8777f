"""Rollups (from the workers' per-minute records) against plain pandas on the same rows; eviction, bounds,
compaction, snapshots; history."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from dashboard.core.timeunits import DAY_MINUTES, MINUTE_MS
from dashboard.ingest.transform import observe
from dashboard.store.aggregate import MinuteAggregator
from dashboard.store.buffer import RingBuffer
from dashboard.store.decode import to_batch
from dashboard.store.rollups import COMPACT_MIN_IDS, FUTURE_MINUTES, Rollups
from dashboard.views import history
from dashboard.views.filters import Filters
from tests import insight_data as data
from tests import synthetic as syn

NOW = syn.NOW_MS
NOW_MINUTE = NOW // MINUTE_MS
EVENTS = data.varied(6000, seed=21, span_ms=3 * 86_400_000, merchants=40)
REF = data.reference(EVENTS)
CUBE_KEYS = ["minute", "merchant_category", "payment_method", "status", "commission_type", "valid"]
MERCHANT_KEYS = ["minute", "merchant_id", "merchant_category", "commission_type"]


def clock(ms: int = NOW) -> float:
    return ms / 1000


def transact(rollups: Rollups, aggregator: MinuteAggregator, evs: Sequence[syn.Event]) -> None:
    """One worker transaction: judge and aggregate `evs` as the worker does, then apply the flushed records."""
    for e in evs:
        m = e.message
        checked, _ = observe(None, m.value, m.kafka_ts_ms, 1000)
        aggregator.add_message(m.partition, m.value, m.kafka_ts_ms, checked, 1000)
    rollups.apply_values(value for _, value, _ in aggregator.flush())


def rolled(evs: Sequence[syn.Event], chunk: int = 1000, now_ms: int = NOW, days: float = 8) -> Rollups:
    """Rollups of `evs` aggregated by one worker in transactions of `chunk` messages."""
    rollups = Rollups(days, clock=lambda: clock(now_ms))
    aggregator = MinuteAggregator(clock=lambda: clock(now_ms))
    for start in range(0, len(evs), chunk):
        transact(rollups, aggregator, evs[start : start + chunk])
    return rollups


def expected_cube(ref: pd.DataFrame) -> pd.DataFrame:
    """The cube by pandas: timed rows grouped by minute and every dimension, unknown amounts as 0."""
    rows = ref[ref["ts_ms"] >= 0]
    out = rows.groupby(CUBE_KEYS, sort=True).agg(
        count=("ts_ms", "size"), amount=("amount", "sum"), commission=("commission", "sum")
    )
    return out.reset_index()


def expected_merchants(ref: pd.DataFrame) -> pd.DataFrame:
    rows = ref[ref["ts_ms"] >= 0].assign(minute=lambda f: f["minute"] // 5 * 5)
    out = rows.groupby(MERCHANT_KEYS, sort=True).agg(
        count=("ts_ms", "size"), amount=("amount", "sum"), commission=("commission", "sum")
    )
    return out.reset_index()


def plain(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """A rollup frame as plain values, sorted like the pandas side."""
    out = frame.astype({c: object for c in keys if c not in ("minute", "valid")}).astype({"count": np.int64})
    return out.sort_values(keys, ignore_index=True)[[*keys, "count", "amount", "commission"]]


def assert_same(got: pd.DataFrame, want: pd.DataFrame, keys: list[str]) -> None:
    got = plain(got, keys)
    want = want.sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_reference_matches_the_decoded_buffer() -> None:
    """The pandas side reads the records; it must agree with what to_batch decoded (else comparisons mean nothing)."""
    snap = syn.buffer_of(EVENTS).snapshot()
    frame = snap.frame(["ts_ms", "merchant_id", "customer_id", *data.ENUMS, "amount", "commission_amount", "valid"])
    assert frame["ts_ms"].tolist() == REF["ts_ms"].tolist()
    for name in ("merchant_id", "customer_id", *data.ENUMS):
        assert frame[name].astype(object).tolist() == REF[name].tolist(), name
    assert np.array_equal(frame["amount"].to_numpy(), REF["amount"].to_numpy(), equal_nan=True)
    assert np.array_equal(frame["commission_amount"].to_numpy(), REF["commission"].to_numpy(), equal_nan=True)
    assert REF["valid"].tolist() == frame["valid"].tolist()
    assert set(REF["commission_type"]) == {"", *data.ENUMS["commission_type"]}
    assert (REF["ts_ms"] < 0).any() and (REF["ts_ms"] < NOW - 3 * 86_400_000).any()  # garbage and time-warped rows


def test_cube_and_merchant_table_match_pandas() -> None:
    snap = rolled(EVENTS).snapshot()
    ref = REF.assign(amount=REF["amount"].fillna(0.0), commission=REF["commission"].fillna(0.0))
    assert_same(snap.cube, expected_cube(ref), CUBE_KEYS)
    assert_same(snap.merchants, expected_merchants(ref), MERCHANT_KEYS)
    assert snap.added == int((REF["ts_ms"] >= 0).sum())
    assert snap.skipped == 0  # records outside the horizon; rows without event time the worker skips
    valid = REF[(REF["ts_ms"] >= 0) & REF["valid"]]
    assert snap.span_minutes() == (valid["minute"].min(), valid["minute"].max())
    assert REF.loc[REF["ts_ms"] >= 0, "minute"].min() < valid["minute"].min() - 1440  # time-warped rows, days older


@pytest.mark.parametrize("chunk", [1, 333, 6000])
def test_batching_and_order_do_not_change_the_sums(chunk: int) -> None:
    base = rolled(EVENTS).snapshot()
    shuffled = [EVENTS[i] for i in np.random.default_rng(chunk).permutation(len(EVENTS))]
    snap = rolled(shuffled, chunk=chunk).snapshot()
    pd.testing.assert_frame_equal(snap.cube, base.cube)
    # Merchant codes follow first sight, so rows of one slot may come in another order.
    pd.testing.assert_frame_equal(plain(snap.merchants, MERCHANT_KEYS), plain(base.merchants, MERCHANT_KEYS))
    assert snap.first_seen.empty  # the aggregates keep no customers


def test_rollups_of_a_buffer_snapshot_equal_rollups_of_its_batches() -> None:
    snap = Rollups.of_snapshot(syn.buffer_of(EVENTS).snapshot(), clock=clock).snapshot()
    base = rolled(EVENTS).snapshot()
    pd.testing.assert_frame_equal(snap.cube, base.cube)
    pd.testing.assert_frame_equal(plain(snap.merchants, MERCHANT_KEYS), plain(base.merchants, MERCHANT_KEYS))


def test_horizon_skips_old_and_future_rows() -> None:
    days = 1.5
    snap = rolled(EVENTS, days=days).snapshot()
    horizon = NOW_MINUTE - round(days * DAY_MINUTES)
    kept = REF[(REF["ts_ms"] >= 0) & (REF["minute"] >= horizon)]
    assert 0 < len(kept) < int((REF["ts_ms"] >= 0).sum())
    ref = kept.assign(amount=kept["amount"].fillna(0.0), commission=kept["commission"].fillna(0.0))
    assert_same(snap.cube, expected_cube(ref), CUBE_KEYS)
    assert snap.skipped > 0  # the records of minutes before the horizon
    assert snap.horizon_minute == horizon

    ahead = rolled(EVENTS, now_ms=NOW - (FUTURE_MINUTES + 60) * MINUTE_MS).snapshot()
    assert ahead.cube["minute"].max() <= NOW_MINUTE - 60
    assert ahead.added == int(((REF["ts_ms"] >= 0) & (REF["minute"] <= NOW_MINUTE - 60)).sum())


def test_eviction_drops_whole_hours_past_the_horizon_as_the_clock_moves() -> None:
    now = [NOW]
    rollups = Rollups(1, clock=lambda: clock(now[0]))
    aggregator = MinuteAggregator(clock=lambda: clock(now[0]))
    for start in range(0, len(EVENTS), 1000):
        transact(rollups, aggregator, EVENTS[start : start + 1000])
    before = rollups.snapshot()
    now[0] = NOW + 6 * 3_600_000  # six hours later, nothing added
    after = rollups.snapshot()
    assert after.version > before.version
    horizon_hour = (NOW_MINUTE + 360 - DAY_MINUTES) // 60
    assert after.cube["minute"].min() // 60 == horizon_hour
    still = before.cube[before.cube["minute"] // 60 >= horizon_hour].reset_index(drop=True)
    pd.testing.assert_frame_equal(after.cube, still)
    assert (after.merchants["minute"] // 60 >= horizon_hour).all()
    now[0] = NOW + 3 * 86_400_000
    empty = rollups.snapshot()
    assert empty.empty and len(empty.merchants) == 0 and empty.span_minutes() is None
    assert rollups.rows() == (0, 0)


def add_rows(rollups: Rollups, ts_ms: np.ndarray, merchants: Sequence[str], partition: int = 0) -> None:
    """Valid retail/tiered rows with the given times and merchants (amount 1000, commission 20), one transaction."""
    aggregator = MinuteAggregator(top=None, max_open=1 << 30, clock=rollups.clock, max_merchants=1 << 30)
    for t, merchant in zip(ts_ms.tolist(), merchants, strict=True):
        aggregator.add(partition, t, merchant, "retail", "", "", "tiered", 1000, 20, ())
    rollups.apply_values(value for _, value, _ in aggregator.flush())


def test_size_stays_bounded_under_a_long_steady_stream() -> None:
    """Four days at 20 transactions a minute into 2-day rollups: rows stop growing once the horizon is reached."""
    now = [NOW]
    rollups = Rollups(2, clock=lambda: clock(now[0]))
    rng = np.random.default_rng(3)
    sizes = []
    for hour in range(96):
        start = NOW + hour * 3_600_000
        now[0] = start + 3_600_000
        ts = np.sort(rng.integers(start, start + 3_600_000, 1200))
        merchants = [f"merch_{i}" for i in rng.integers(0, 20, 1200)]
        add_rows(rollups, ts, merchants)
        sizes.append(rollups.nbytes())
    cube, merchant_rows = rollups.rows()
    assert cube <= (2 * 24 + 1) * 60  # one combination per minute, 2 days and the current hour
    assert merchant_rows <= (2 * 24 + 1) * 12 * 20
    assert max(sizes[60:]) <= 1.05 * sizes[60]  # flat after the horizon
    assert rollups.snapshot().cube["count"].sum() == pytest.approx(49 * 1200, rel=0.03)


def test_stale_merchants_are_forgotten() -> None:
    now = [NOW]
    rollups = Rollups(1, clock=lambda: clock(now[0]))
    n = 2 * COMPACT_MIN_IDS
    add_rows(rollups, np.full(n, NOW - 3_600_000), [f"m{i}" for i in range(n)])
    assert rollups.ids() == n + 1
    now[0] = NOW + 86_400_000 + 2 * 3_600_000
    add_rows(rollups, np.full(3, now[0] - 60_000), ["m1", "kept", "kept"])
    snap = rollups.snapshot()
    assert rollups.ids() == 3  # "", m1, kept
    counts = snap.merchants.groupby("merchant_id", observed=True)["count"].sum().to_dict()
    assert counts == {"m1": 1, "kept": 2}


def test_merchant_compaction_keeps_the_sums_of_merchants_still_seen() -> None:
    now = [NOW]
    rollups = Rollups(1, clock=lambda: clock(now[0]))
    n = 2 * COMPACT_MIN_IDS
    add_rows(rollups, np.full(n, NOW - 23 * 3_600_000), [f"m{i}" for i in range(n)])
    add_rows(rollups, np.full(4, NOW - 60_000), ["m5000", "m7", "m7", "z"])
    now[0] = NOW + 2 * 3_600_000  # the first hour is past the horizon, the last is not
    snap = rollups.snapshot()
    counts = snap.merchants.groupby("merchant_id", observed=True)["count"].sum().to_dict()
    assert counts == {"m7": 2, "m5000": 1, "z": 1}
    assert snap.merchants["amount"].sum() == 4000.0
    assert rollups.ids() == 4  # "", m7, m5000, z


def test_snapshot_is_immutable_and_reused_until_a_change() -> None:
    rollups = rolled(EVENTS[:2000])
    snap = rollups.snapshot()
    assert rollups.snapshot() is snap
    with pytest.raises(ValueError, match="read-only"):
        snap.cube.loc[0, "count"] = 99
    with pytest.raises(ValueError, match="read-only"):
        snap.cube["amount"].to_numpy()[0] = 1.0
    transact(rollups, MinuteAggregator(clock=clock), EVENTS[2000:2100])
    assert rollups.snapshot() is not snap
    assert snap.cube["count"].sum() == rolled(EVENTS[:2000]).snapshot().cube["count"].sum()


def test_concurrent_snapshots_while_adding() -> None:
    rollups = Rollups(clock=clock)
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                snap = rollups.snapshot()
                assert int(snap.cube["count"].sum()) == int(snap.merchants["count"].sum()) == snap.added
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    aggregator = MinuteAggregator(clock=clock)
    for start in range(0, len(EVENTS), 200):
        transact(rollups, aggregator, EVENTS[start : start + 200])
    done.set()
    for t in readers:
        t.join()
    assert not errors
    pd.testing.assert_frame_equal(rollups.snapshot().cube, rolled(EVENTS).snapshot().cube)


def test_empty_rollups() -> None:
    snap = Rollups(clock=clock).snapshot()
    assert snap.empty and snap.added == 0 and list(snap.cube.columns) == [*CUBE_KEYS, "count", "amount", "commission"]
    assert history.describe(snap).endswith("nothing aggregated yet.")
    h = history.select(snap, Filters(), NOW)
    assert len(h.frame) == 0 and h.first_minute == NOW_MINUTE


# --- history: the rollups narrowed by the filters ------------------------------------------------

SNAP = rolled(EVENTS).snapshot()
#: History starts at the first valid minute: time-warped rows days before it are left out.
ORIGIN = REF.loc[(REF["ts_ms"] >= 0) & REF["valid"], "minute"].min()
TIMED = REF[(REF["ts_ms"] >= 0) & (REF["minute"] >= ORIGIN)]
#: The merchant table keeps the whole 5-minute slot holding the origin.
SLOTTED = REF[(REF["ts_ms"] >= 0) & (REF["minute"] // 5 * 5 + 5 > ORIGIN)]
FILTERS = [
    Filters(),
    Filters(window="24h"),
    Filters(categories=("food_service", "retail"), methods=("online",), statuses=("approved", "declined")),
    Filters(validity="invalid", window="1h"),
    Filters(validity="valid", categories=("government",)),
]


def narrowed(filters: Filters, merchant_table: bool) -> pd.DataFrame:
    """Reference rows the rollups can narrow to (the merchant table: merchants and categories only)."""
    rows = SLOTTED if merchant_table else TIMED
    if filters.window_ms is not None:
        start = (NOW - filters.window_ms) // MINUTE_MS
        rows = rows[(rows["minute"] // 5 * 5 + 5 > start) if merchant_table else (rows["minute"] >= start)]
    if filters.merchants:
        rows = rows[rows["merchant_id"].isin(filters.merchants)]
    if filters.categories:
        rows = rows[rows["merchant_category"].isin(filters.categories)]
    if merchant_table:
        return rows
    if filters.methods:
        rows = rows[rows["payment_method"].isin(filters.methods)]
    if filters.statuses:
        rows = rows[rows["status"].isin(filters.statuses)]
    if filters.validity != "all":
        rows = rows[rows["valid"] == (filters.validity == "valid")]
    return rows


@pytest.mark.parametrize("filters", FILTERS)
def test_select_on_the_cube_applies_every_filter_but_the_merchant(filters: Filters) -> None:
    h = history.select(SNAP, filters, NOW)
    assert not h.merchant_table and h.unapplied == () and h.step == 1
    want = narrowed(filters, merchant_table=False)
    assert int(h.frame["count"].sum()) == len(want) > 0
    got = h.frame.groupby("minute")["count"].sum()
    assert got[got > 0].to_dict() == want.groupby("minute").size().to_dict()
    assert history.caption(h) is None


@pytest.mark.parametrize(
    "filters",
    [
        Filters(merchants=("merch_7", syn.XSS)),
        Filters(merchants=("merch_7",), categories=("food_service",), window="24h"),
        Filters(merchants=("merch_7",), methods=("pos",), statuses=("approved",), validity="valid"),
    ],
)
def test_select_with_merchants_uses_the_merchant_table_and_names_what_it_cannot_narrow(filters: Filters) -> None:
    h = history.select(SNAP, filters, NOW)
    assert h.merchant_table and h.step == 5
    want = narrowed(filters, merchant_table=True)
    assert int(h.frame["count"].sum()) == len(want) > 0
    unapplied = [name for name, on in (("payment method", filters.methods), ("status", filters.statuses)) if on]
    unapplied += ["validity"] if filters.validity != "all" else []
    assert list(h.unapplied) == unapplied
    note = history.caption(h)
    assert (note is None) == (not unapplied)
    if note:
        assert all(name in note for name in unapplied)


def test_select_merchants_table_on_request_without_a_merchant_filter() -> None:
    h = history.select(SNAP, Filters(methods=("nfc",)), NOW, merchants=True)
    assert h.merchant_table and h.unapplied == ("payment method",)
    assert int(h.frame["count"].sum()) == len(SLOTTED)


def test_time_bins_cover_the_window_at_least_one_slot_wide() -> None:
    for filters, merchants in ((Filters(window="1h"), False), (Filters(window="15m"), True), (Filters(), False)):
        h = history.select(SNAP, filters, NOW, merchants=merchants)
        bins = history.time_bins(h)
        assert bins.width >= h.step * MINUTE_MS and bins.width % MINUTE_MS == 0
        assert len(bins.starts) <= 121
        assert bins.starts[0] <= h.first_minute * MINUTE_MS < bins.starts[0] + bins.width
        assert bins.starts[-1] <= NOW < bins.starts[-1] + bins.width
        counts = np.bincount(bins.index[bins.index >= 0], weights=h.frame["count"].to_numpy()[bins.index >= 0])
        assert counts.sum() == h.frame["count"].sum()


def test_sum_by_sorted_and_unsorted_keys() -> None:
    keys = np.array([3, 1, 3, 2, 1])
    got_keys, (sums,) = history.sum_by(keys, np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert got_keys.tolist() == [1, 2, 3] and sums.tolist() == [7.0, 4.0, 4.0]
    got_keys, (sums,) = history.sum_by(np.array([1, 1, 2]), np.array([1, 2, 3]))
    assert got_keys.tolist() == [1, 2] and sums.tolist() == [3, 3]
    empty_keys, (empty,) = history.sum_by(np.empty(0, np.int64), np.empty(0))
    assert len(empty_keys) == len(empty) == 0


def test_rollups_of_a_buffer_take_only_new_rows_and_keep_evicted_ones() -> None:
    buffer = RingBuffer(1500)
    for start in range(0, 3000, 500):
        buffer.append(to_batch([e.message for e in EVENTS[start : start + 500]]))
        snap = history.rollups_of(None, buffer, clock)
    want = rolled(EVENTS[:3000]).snapshot()  # the buffer holds only the last 1500 now
    pd.testing.assert_frame_equal(snap.cube, want.cube)
    assert history.rollups_of(None, buffer, clock) is snap  # nothing new: the same snapshot
    feed_rollups = rolled(EVENTS[:10])
    assert history.rollups_of(feed_rollups, buffer, clock).added == feed_rollups.snapshot().added


def test_filters_replace_keeps_window_semantics() -> None:
    """The Volume page asks for the merchant table over everything: the window must drop, the rest stay."""
    f = replace(Filters(merchants=("merch_7",), window="15m"), window="all")
    h = history.select(SNAP, f, NOW, merchants=True)
    assert h.start_minute is None and int(h.frame["count"].sum()) == int((SLOTTED["merchant_id"] == "merch_7").sum())
