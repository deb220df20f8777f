"""Volume analytics against plain pandas (local times through zoneinfo's Asia/Tehran) on the same synthetic rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.core.timeunits import MINUTE_MS
from dashboard.store.rollups import Rollups
from dashboard.views import history, volume
from dashboard.views.filters import Filters
from tests import insight_data as data
from tests import synthetic as syn

NOW = syn.NOW_MS
NOW_MINUTE = NOW // MINUTE_MS
HOUR = 3_600_000
BURST_AT = NOW - 2 * HOUR  # one merchant's burst: 40 transactions in four minutes
EVENTS = [
    *data.varied(8000, seed=51, span_ms=3 * 86_400_000, merchants=20),
    *data.varied(40, seed=52, now_ms=BURST_AT, span_ms=4 * MINUTE_MS, merchants=1, xss=False, invalid_share=0.0),
]
SNAPSHOT = syn.buffer_of(EVENTS).snapshot()
REF = data.reference(EVENTS)
ORIGIN = REF.loc[(REF["ts_ms"] >= 0) & REF["valid"], "minute"].min()  # history starts at the first valid minute
TIMED = REF[(REF["ts_ms"] >= 0) & (REF["minute"] >= ORIGIN)]
SLOTTED = REF[(REF["ts_ms"] >= 0) & (REF["minute"] // 5 * 5 + 5 > ORIGIN)]  # merchant table: whole slots
ROLLUPS = Rollups.of_snapshot(SNAPSHOT, clock=lambda: NOW / 1000).snapshot()
#: Iran's week, Saturday first, from pandas' Monday-first day of week.
IRAN_DAY = {0: 2, 1: 3, 2: 4, 3: 5, 4: 6, 5: 0, 6: 1}


def epoch_ms(values: pd.Series) -> np.ndarray:
    """Epoch milliseconds of datetimes, whatever their resolution."""
    return np.array([t.value // 1_000_000 for t in values], dtype=np.int64)


def tehran(ms: pd.Series | np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(np.asarray(ms), unit="ms", utc=True).tz_convert("Asia/Tehran")


def test_local_time_is_tehran_all_year() -> None:
    minutes = np.array([NOW_MINUTE, NOW_MINUTE + 183 * 1440, NOW_MINUTE - 3 * 1440 + 20 * 60 + 29])
    hour, weekday = volume.local_hour_and_weekday(minutes)
    local = tehran(minutes * MINUTE_MS)
    assert hour.tolist() == local.hour.tolist() == [3, 3, 23]
    assert weekday.tolist() == [IRAN_DAY[d] for d in local.day_of_week] == [5, 6, 2]  # Thursday, Friday, Monday


@pytest.mark.parametrize("filters", [Filters(), Filters(window="5m"), Filters(methods=("online",))])
def test_live_buckets_match_pandas(filters: Filters) -> None:
    mask = filters.mask(SNAPSHOT, NOW)
    got = volume.live(SNAPSHOT.frame(["ts_ms"], rows=mask)["ts_ms"].to_numpy(), NOW)
    assert len(got) == 90 and got["time"].iloc[-1].value // 1_000_000 == NOW // 10_000 * 10_000
    rows = REF[mask]
    rows = rows[(rows["ts_ms"] >= 0) & (rows["ts_ms"] // 10_000 > NOW // 10_000 - 90) & (rows["ts_ms"] <= NOW)]
    want = rows.groupby(rows["ts_ms"] // 10_000 * 10_000).size().to_dict()
    assert {t.value // 1_000_000: c for t, c in zip(got["time"], got["count"], strict=True) if c} == want
    top = max(want.values())
    assert got.loc[got["peak"], "count"].tolist() == [top] * sum(v == top for v in want.values())


def test_live_without_rows_has_no_peak() -> None:
    got = volume.live(np.array([-1, NOW - 3 * HOUR]), NOW)
    assert got["count"].sum() == 0 and not got["peak"].any()


@pytest.mark.parametrize("filters", [Filters(), Filters(window="24h", categories=("food_service",))])
def test_hourly_and_daily_peaks_match_pandas(filters: Filters) -> None:
    h = history.select(ROLLUPS, filters, NOW)
    got = volume.hourly(h)
    rows = TIMED if not filters.categories else TIMED[TIMED["merchant_category"].isin(filters.categories)]
    if filters.window_ms is not None:
        rows = rows[rows["minute"] >= (NOW - filters.window_ms) // MINUTE_MS]
    first = h.first_minute // 60
    assert epoch_ms(got["time"])[0] == first * HOUR and len(got) == NOW // HOUR - first + 1
    want = rows.groupby(rows["ts_ms"] // HOUR * HOUR).size()
    assert {t.value // 1_000_000: c for t, c in zip(got["time"], got["count"], strict=True) if c} == want.to_dict()
    dates = tehran(epoch_ms(got["time"])).date
    for day in np.unique(dates):
        counts, flags = got["count"].to_numpy()[dates == day], got["peak"].to_numpy()[dates == day]
        if counts.max() > 0:
            assert flags.tolist() == (np.arange(len(counts)) == int(np.argmax(counts))).tolist()
        else:
            assert not flags.any()
    assert got["peak"].sum() == len(np.unique(dates[got["count"].to_numpy() > 0]))


def test_heatmap_matches_pandas_in_tehran_time() -> None:
    h = history.select(ROLLUPS, Filters(), NOW)
    got = volume.heatmap(h).set_index(["weekday", "hour"])
    assert len(got) == 168
    local = tehran(TIMED["ts_ms"])
    names = np.array(volume.WEEKDAYS)[[IRAN_DAY[d] for d in local.day_of_week]]
    want = pd.Series(1, index=pd.MultiIndex.from_arrays([names, local.hour])).groupby(level=[0, 1]).sum()
    assert {k: v for k, v in got["count"].items() if v} == want.to_dict()
    hours = pd.date_range(
        pd.Timestamp(h.first_minute // 60 * HOUR, unit="ms", tz="UTC"), pd.Timestamp(NOW, unit="ms", tz="UTC"), freq="h"
    ).tz_convert("Asia/Tehran")
    occurs = pd.Series(
        1,
        index=pd.MultiIndex.from_arrays(
            [np.array(volume.WEEKDAYS)[[IRAN_DAY[d] for d in hours.day_of_week]], hours.hour]
        ),
    )
    occurs = occurs.groupby(level=[0, 1]).sum()
    for key, row in got.iterrows():
        assert row["hours"] == occurs.get(key, 0)
        assert (
            row["average"] == pytest.approx(row["count"] / row["hours"]) if row["hours"] else np.isnan(row["average"])
        )


def test_parts_of_day_match_pandas() -> None:
    h = history.select(ROLLUPS, Filters(methods=("online", "pos")), NOW)
    got = volume.parts_of_day(h).set_index("merchant_category")
    rows = TIMED[TIMED["payment_method"].isin(["online", "pos"])]
    part = pd.cut(tehran(rows["ts_ms"]).hour, [0, 6, 12, 18, 24], right=False, labels=[p for p, _, _ in volume.PARTS])
    table = pd.crosstab(rows["merchant_category"].to_numpy(), np.asarray(part)).reindex(
        columns=[p for p, _, _ in volume.PARTS], fill_value=0
    )
    for category, counts in table.iterrows():
        row = got.loc[category or "(missing)"]
        assert row["transactions"] == counts.sum()
        for name in counts.index:
            assert row[name] == pytest.approx(counts[name] / counts.sum())
        assert row["busiest"] == counts.idxmax()
    assert got["transactions"].is_monotonic_decreasing


def test_jumps_match_pandas_and_find_the_burst() -> None:
    everything = history.select(ROLLUPS, Filters(), NOW, merchants=True)
    start = ROLLUPS.span_minutes()[0]
    assert start == ORIGIN
    got = volume.jumps(everything, None, start)
    windows = NOW_MINUTE // 5 - start // 5 + 1
    rows = SLOTTED[SLOTTED["merchant_id"] != ""]
    per = rows.groupby([rows["minute"] // 5 * 5, "merchant_id"]).size().rename("n").reset_index()
    usual = rows.groupby("merchant_id").size() / windows
    per["usual"] = per["merchant_id"].map(usual)
    want = per[(per["n"] >= volume.JUMP_MIN) & (per["n"] > 3 * per["usual"])]
    assert sorted(
        zip(epoch_ms(got["window"]) // MINUTE_MS, got["merchant_id"], got["transactions"], strict=True)
    ) == sorted(zip(want["minute"], want["merchant_id"], want["n"], strict=True))
    assert np.allclose(got["ratio"], got["transactions"] / got["usual"])
    assert "merch_1" in got["merchant_id"].tolist()  # the burst (merch_1 also trades in the main events)
    burst = got[got["merchant_id"] == "merch_1"]
    assert (epoch_ms(burst["window"]) >= BURST_AT - 10 * MINUTE_MS).all()
    since = volume.jumps(everything, NOW_MINUTE - 30, start)
    assert len(since) < len(got) and (epoch_ms(since["window"]) >= (NOW_MINUTE - 30) // 5 * 5 * MINUTE_MS).all()
    assert volume.jumps(everything, None, NOW_MINUTE - 30).empty  # less than an hour of history: no usual yet
    with pytest.raises(ValueError, match="merchant table"):
        volume.jumps(history.select(ROLLUPS, Filters(), NOW), None, start)
