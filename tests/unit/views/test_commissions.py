"""Commission analytics and the what-if against plain pandas (and plain Python) on the same synthetic rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.core.timeunits import MINUTE_MS
from dashboard.store.rollups import Rollups
from dashboard.views import commissions, history
from dashboard.views.filters import Filters
from tests import insight_data as data
from tests import synthetic as syn

NOW = syn.NOW_MS
NOW_MINUTE = NOW // MINUTE_MS
EVENTS = data.varied(6000, seed=31, span_ms=2 * 86_400_000, merchants=25)
SNAPSHOT = syn.buffer_of(EVENTS).snapshot()
REF = data.reference(EVENTS)
ORIGIN = REF.loc[(REF["ts_ms"] >= 0) & REF["valid"], "minute"].min()  # history starts at the first valid minute
TIMED = REF[(REF["ts_ms"] >= 0) & (REF["minute"] >= ORIGIN)].assign(commission=lambda f: f["commission"].fillna(0.0))
#: The merchant table keeps the whole 5-minute slot holding the origin.
SLOTTED = REF[(REF["ts_ms"] >= 0) & (REF["minute"] // 5 * 5 + 5 > ORIGIN)].assign(
    commission=lambda f: f["commission"].fillna(0.0)
)
ROLLUPS = Rollups.of_snapshot(SNAPSHOT, clock=lambda: NOW / 1000).snapshot()
COLUMNS = ["amount", "commission_amount", "commission_type", "merchant_id", "merchant_category"]
CASES = [
    Filters(),
    Filters(window="1h"),
    Filters(categories=("food_service",), methods=("online", "pos")),
    Filters(validity="invalid"),
]


def selected(filters: Filters) -> tuple[pd.DataFrame, pd.DataFrame]:
    mask = filters.mask(SNAPSHOT, NOW)
    return SNAPSHOT.frame(COLUMNS, rows=mask), REF[mask].reset_index(drop=True)


def by_event_time(filters: Filters) -> pd.DataFrame:
    """Timed reference rows passing the filters the cube can apply, the window by event time."""
    rows = TIMED
    if filters.window_ms is not None:
        rows = rows[rows["minute"] >= (NOW - filters.window_ms) // MINUTE_MS]
    for column, wanted in (
        ("merchant_category", filters.categories),
        ("payment_method", filters.methods),
        ("status", filters.statuses),
    ):
        if wanted:
            rows = rows[rows[column].isin(wanted)]
    if filters.validity != "all":
        rows = rows[rows["valid"] == (filters.validity == "valid")]
    return rows


def test_schemes_on_worked_examples() -> None:
    amounts = np.array([0.0, 49.0, 100_000.0, 250_000.0, 400_000.0, 1_000_000.0, 2_000_000.0])
    assert commissions.flat(amounts).tolist() == [0, 0, 2000, 5000, 8000, 20_000, 40_000]
    # 1.5 % to 250,000; 2 % to 1,000,000; 3 % above
    assert commissions.progressive(amounts).tolist() == [0, 0, 1500, 3750, 6750, 18_750, 48_750]
    volumes = np.array([0.0, 4.99e9, 5e9, 49.9e9, 50e9, 1e13])
    assert commissions.tier_rates(volumes).tolist() == [250, 250, 200, 200, 150, 150]
    assert commissions.tiered(np.array([1_000_000.0] * 3), np.array([0.0, 5e9, 50e9])).tolist() == [25e3, 2e4, 15e3]


def progressive_loop(amount: int) -> int:
    """The progressive scheme in plain integer Python, band by band."""
    total_bp, lower = 0, 0
    for upper, bp in ((250_000, 150), (1_000_000, 200), (None, 300)):
        top = amount if upper is None else min(amount, upper)
        total_bp += max(0, top - lower) * bp
        if upper is None or amount <= upper:
            break
        lower = upper
    return total_bp // 10_000


def test_progressive_matches_a_plain_loop() -> None:
    amounts = np.random.default_rng(2).lognormal(13.0, 1.2, 5000).astype(np.int64)
    got = commissions.progressive(amounts.astype(np.float64))
    assert got.tolist() == [progressive_loop(int(a)) for a in amounts]


def test_monthly_volume_projects_each_merchants_amount_to_thirty_days() -> None:
    h = history.select(ROLLUPS, Filters(), NOW, merchants=True)
    got = commissions.monthly_volume(h)
    scale = 30 * 1440 / (NOW_MINUTE + 1 - ORIGIN)
    want = SLOTTED.groupby("merchant_id")["amount"].sum() * scale
    assert got.sort_index().index.tolist() == want.sort_index().index.tolist()
    assert np.allclose(got.sort_index().to_numpy(), want.sort_index().to_numpy())
    short = history.History(
        h.frame, h.step, NOW_MINUTE - 5, ORIGIN, NOW_MINUTE, (), True
    )  # five minutes: scaled as one hour
    assert commissions.monthly_volume(short).sum() == pytest.approx(h.frame["amount"].sum() * 30 * 24)


@pytest.mark.parametrize("filters", CASES)
def test_what_if_matches_plain_python(filters: Filters) -> None:
    frame, ref = selected(filters)
    volume = commissions.monthly_volume(history.select(ROLLUPS, Filters(), NOW, merchants=True))
    table = commissions.what_if(frame, volume).set_index("commission_type")
    ref = ref[ref["amount"].notna()]
    rate = {m: 250 if v < 5e9 else 200 if v < 50e9 else 150 for m, v in volume.items()}
    for label in ["all", *sorted(set(ref["commission_type"]))]:
        rows = ref if label == "all" else ref[ref["commission_type"] == label]
        row = table.loc[label or "(missing)"]
        amounts = [int(a) for a in rows["amount"]]
        assert row["transactions"] == len(rows)
        assert row["amount"] == sum(amounts)
        assert row["actual"] == rows["commission"].fillna(0).sum()
        assert row["flat"] == sum(a * 200 // 10_000 for a in amounts)
        assert row["progressive"] == sum(progressive_loop(a) for a in amounts)
        tiered = sum(a * rate.get(m, 250) // 10_000 for a, m in zip(amounts, rows["merchant_id"], strict=True))
        assert row["tiered"] == tiered
    assert table.index[-1] == "all"


def test_flat_scheme_reproduces_the_generators_commission() -> None:
    """The synthetic events charge int(2 % of the amount), as the original generator: flat must match it."""
    frame, _ = selected(Filters())
    table = commissions.what_if(frame, pd.Series(dtype=float))
    for row in table.itertuples():
        assert row.flat == row.actual
    long = commissions.what_if_long(table)
    assert long["scheme"].tolist() == ["actual", "flat", "progressive", "tiered"]
    everything = table[table["commission_type"] == "all"].iloc[0]
    assert long["ratio"].iloc[0] == pytest.approx(everything["actual"] / everything["amount"])


@pytest.mark.parametrize("filters", CASES)
def test_ratio_by_category_matches_pandas(filters: Filters) -> None:
    frame, ref = selected(filters)
    got = commissions.ratio_by_category(frame)
    known = ref[ref["amount"].notna() & ref["commission"].notna()]
    want = known.groupby("merchant_category").agg(
        transactions=("amount", "size"), amount=("amount", "sum"), commission=("commission", "sum")
    )
    want["ratio"] = want["commission"] / want["amount"]
    want.index = [c or "(missing)" for c in want.index]
    got = got.set_index("merchant_category").sort_index()
    pd.testing.assert_frame_equal(got, want.sort_index(), check_dtype=False, check_names=False)
    assert got["ratio"].between(0.0195, 0.02).all()  # int(2 %) of each amount


@pytest.mark.parametrize("filters", [Filters(), Filters(window="24h"), Filters(categories=("retail",)), *CASES[2:]])
def test_commission_per_minute_by_type_matches_pandas(filters: Filters) -> None:
    h = history.select(ROLLUPS, filters, NOW)
    series = commissions.per_minute_by_type(h)
    bins = history.time_bins(h)
    rows = by_event_time(filters)
    first = bins.starts[0] // bins.width
    index = rows["minute"] * MINUTE_MS // bins.width - first
    rows = rows[(index >= 0) & (index < len(bins.starts))]
    want = rows.groupby([rows["minute"] * MINUTE_MS // bins.width * bins.width, "commission_type"])["commission"].sum()
    got = series[series["commission"] > 0]
    got_keys = {
        (t.value // 1_000_000, c): v
        for t, c, v in zip(got["time"], got["commission_type"], got["commission"], strict=True)
    }
    want_keys = {(ms, c or "(missing)"): v for (ms, c), v in want.items() if v > 0}
    assert got_keys.keys() == want_keys.keys() and len(got_keys) > 0
    assert all(got_keys[k] == pytest.approx(want_keys[k]) for k in got_keys)
    assert np.allclose(series["per_minute"], series["commission"] / (bins.width / MINUTE_MS))
    assert len(series) == len(bins.starts) * series["commission_type"].nunique()


def windows_by_pandas(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows[rows["merchant_id"] != ""].assign(window=lambda f: f["minute"] // 5 * 5)
    return rows.groupby(["window", "merchant_id"]).agg(commission=("commission", "sum"), n=("amount", "size"))


@pytest.mark.parametrize("filters", [Filters(), Filters(merchants=("merch_3", "merch_4")), Filters(window="1h")])
def test_top_by_window_matches_pandas(filters: Filters) -> None:
    h = history.select(ROLLUPS, filters, NOW, merchants=True)
    got = commissions.top_by_window(commissions.merchant_windows(h), n=3, windows=12)
    rows = SLOTTED[SLOTTED["merchant_id"].isin(filters.merchants)] if filters.merchants else SLOTTED
    if filters.window_ms is not None:
        rows = rows[rows["minute"] // 5 * 5 + 5 > (NOW - filters.window_ms) // MINUTE_MS]
    per = windows_by_pandas(rows).reset_index()
    latest = sorted(per["window"].unique())[-12:]
    expected = []
    for window in sorted(latest, reverse=True):
        block = per[per["window"] == window]
        total = block["commission"].sum()
        block = block.sort_values(["commission", "merchant_id"], ascending=[False, True]).head(3)
        for rank, row in enumerate(block.itertuples(), 1):
            expected.append((window * MINUTE_MS, rank, row.merchant_id, row.commission, row.n, row.commission / total))
    actual = [
        (t.value // 1_000_000, r, m, c, n, s)
        for t, r, m, c, n, s in zip(*(got[c] for c in got.columns), strict=True)  # window, rank, ...
    ]
    assert [a[:5] for a in actual] == [e[:5] for e in expected] and len(actual) > 0
    assert np.allclose([a[5] for a in actual], [e[5] for e in expected])


def test_window_leaders_match_pandas() -> None:
    h = history.select(ROLLUPS, Filters(), NOW, merchants=True)
    got = commissions.window_leaders(commissions.merchant_windows(h), n=5)
    per = windows_by_pandas(SLOTTED).reset_index()
    per = per[per["commission"] > 0].sort_values(["window", "commission", "merchant_id"], ascending=[True, False, True])
    leaders = per.drop_duplicates("window")
    want = leaders.groupby("merchant_id").agg(windows_led=("window", "size"), commission_led=("commission", "sum"))
    want = want.reset_index().sort_values(
        ["windows_led", "commission_led", "merchant_id"], ascending=[False] * 2 + [True]
    )
    want = want.head(5)
    assert got["merchant_id"].tolist() == want["merchant_id"].tolist()
    assert got["windows_led"].tolist() == want["windows_led"].tolist()
    assert np.allclose(got["commission_led"], want["commission_led"])
    assert np.allclose(got["share"], want["windows_led"] / len(leaders))


def test_merchant_figures_refuse_the_cube_and_handle_nothing() -> None:
    cube = history.select(ROLLUPS, Filters(), NOW)
    for fn in (commissions.monthly_volume, commissions.merchant_windows):
        with pytest.raises(ValueError, match="merchant table"):
            fn(cube)
    nobody = history.select(ROLLUPS, Filters(merchants=("nobody",)), NOW)
    windows = commissions.merchant_windows(nobody)
    assert commissions.top_by_window(windows).empty and commissions.window_leaders(windows).empty
    assert commissions.monthly_volume(nobody).empty
    assert commissions.per_minute_by_type(nobody).empty
