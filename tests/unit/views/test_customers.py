"""Customer analytics against plain pandas on the same synthetic rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dashboard.store.rollups import Rollups
from dashboard.views import customers
from dashboard.views.filters import Filters
from tests import insight_data as data
from tests import synthetic as syn

NOW = syn.NOW_MS
HOUR = 3_600_000
MINUTE = 60_000
#: Two days seen earlier (rolled up only), then six buffered hours: some customers return, some are new.
OLD = data.varied(3000, seed=40, now_ms=NOW - 6 * HOUR, span_ms=2 * 86_400_000, merchants=25)
EVENTS = data.varied(6000, seed=41, span_ms=6 * HOUR, merchants=25)
SNAPSHOT = syn.buffer_of(EVENTS).snapshot()
REF = data.reference(EVENTS)
SEEN = data.reference([*OLD, *EVENTS])
#: customer_id -> first minute, as a source that remembers customers beyond the buffer would give it
#: (the per-minute aggregates keep no customers: `Rollups` gives an empty one).
FIRST_SEEN = (
    SEEN[(SEEN["ts_ms"] >= 0) & (SEEN["customer_id"] != "")].groupby("customer_id")["minute"].min().astype(np.int64)
)
COLUMNS = ["ts_ms", "customer_id", "customer_type", "payment_method", "status", "amount"]
CASES = [Filters(), Filters(window="1h"), Filters(methods=("online",), categories=("food_service",))]


def selected(filters: Filters) -> tuple[pd.DataFrame, pd.DataFrame]:
    mask = filters.mask(SNAPSHOT, NOW)
    return SNAPSHOT.frame(COLUMNS, rows=mask), REF[mask].reset_index(drop=True)


def first_seen(frame: pd.DataFrame) -> np.ndarray:
    """First-seen times per customer code of `frame` (a frame of SNAPSHOT, so its codes are the snapshot's)."""
    return customers.first_seen_ms(FIRST_SEEN, SNAPSHOT)


def with_id(ref: pd.DataFrame) -> pd.DataFrame:
    return ref[ref["customer_id"] != ""]


def test_fixture_has_returning_and_new_customers() -> None:
    before = set(data.reference(OLD)["customer_id"]) - {""}
    now = set(with_id(REF)["customer_id"])
    assert now & before and now - before


@pytest.mark.parametrize("filters", CASES)
def test_transactions_per_customer_and_histogram_match_pandas(filters: Filters) -> None:
    frame, ref = selected(filters)
    codes, counts = customers.transactions_per_customer(frame)
    names = frame["customer_id"].cat.categories
    got = dict(zip([names[c] for c in codes], counts.tolist(), strict=True))
    want = with_id(ref)["customer_id"].value_counts().to_dict()
    assert got == want
    hist = customers.histogram(frame)
    value_counts = pd.Series(list(want.values())).value_counts()
    assert hist["low"].tolist() == hist["high"].tolist() == list(range(1, max(want.values()) + 1))
    assert hist["customers"].tolist() == [int(value_counts.get(k, 0)) for k in hist["low"]]


def test_histogram_bins_wide_counts() -> None:
    frame, ref = selected(Filters())
    hist = customers.histogram(frame, max_bars=3)
    counts = np.array(list(with_id(ref)["customer_id"].value_counts()))
    width = -(-counts.max() // 3)
    assert (hist["high"] - hist["low"] + 1 == width).all() and len(hist) <= 3
    for row in hist.itertuples():
        assert row.customers == int(((counts >= row.low) & (counts <= row.high)).sum())
    empty = customers.histogram(SNAPSHOT.frame(COLUMNS, rows=np.zeros(len(SNAPSHOT), dtype=bool)))
    assert empty.empty


def test_first_seen_is_the_earliest_event_time_known() -> None:
    frame, _ = selected(Filters())
    got = first_seen(frame)
    names = frame["customer_id"].cat.categories
    timed = SEEN[(SEEN["ts_ms"] >= 0) & (SEEN["customer_id"] != "")]
    rolled = timed.groupby("customer_id")["minute"].min() * MINUTE
    for code in np.unique(frame["customer_id"].cat.codes.to_numpy()):
        name = names[code]
        if name in rolled.index:
            assert got[code] == rolled[name], name
    # Without a first-seen series (the Rollups' is empty): the earliest buffered row, whatever the filters.
    assert Rollups(clock=lambda: NOW / 1000).snapshot().first_seen.empty
    alone = customers.first_seen_ms(pd.Series(dtype=np.int64), SNAPSHOT)
    earliest = with_id(REF[REF["ts_ms"] >= 0]).groupby("customer_id")["ts_ms"].min()
    assert {names[c]: alone[c] for c in range(1, len(names)) if alone[c] >= 0} == earliest.to_dict()


@pytest.mark.parametrize("filters", CASES)
def test_active_customers_per_minute_and_per_hour_match_pandas(filters: Filters) -> None:
    frame, ref = selected(filters)
    timed = with_id(ref[ref["ts_ms"] >= 0])
    for start, width in ((NOW - 59 * MINUTE, MINUTE), (NOW - 6 * HOUR, HOUR)):
        got = customers.active(frame, start, NOW, width)
        assert got["time"].iloc[0].value // 1_000_000 == start // width * width
        assert got["time"].iloc[-1].value // 1_000_000 == NOW // width * width
        rows = timed[(timed["ts_ms"] // width >= start // width) & (timed["ts_ms"] // width <= NOW // width)]
        want = rows.groupby(rows["ts_ms"] // width * width)["customer_id"].nunique()
        got_nonzero = {t.value // 1_000_000: c for t, c in zip(got["time"], got["customers"], strict=True) if c}
        assert got_nonzero == want.to_dict()


@pytest.mark.parametrize("filters", CASES)
def test_new_and_returning_per_hour_match_pandas(filters: Filters) -> None:
    frame, ref = selected(filters)
    got = customers.new_and_returning(frame, first_seen(frame), NOW - 6 * HOUR, NOW, HOUR)
    assert got["kind"].tolist() == ["new"] * 7 + ["returning"] * 7
    timed = SEEN[(SEEN["ts_ms"] >= 0) & (SEEN["customer_id"] != "")]
    first_hour = (timed.groupby("customer_id")["ts_ms"].min() // HOUR).to_dict()
    rows = with_id(ref[ref["ts_ms"] >= 0])
    pairs = rows.assign(hour=rows["ts_ms"] // HOUR)[["hour", "customer_id"]].drop_duplicates()
    pairs = pairs[pairs["hour"] >= (NOW - 6 * HOUR) // HOUR]
    pairs["kind"] = np.where(pairs["customer_id"].map(first_hour) >= pairs["hour"], "new", "returning")
    want = pairs.groupby(["kind", "hour"]).size().to_dict()
    got_nonzero = {
        (k, t.value // 1_000_000 // HOUR): c
        for t, k, c in zip(got["time"], got["kind"], got["customers"], strict=True)
        if c
    }
    assert got_nonzero == want
    assert {k for k, _ in want} == {"new", "returning"} or filters != Filters()


@pytest.mark.parametrize("filters", CASES)
def test_recent_active_and_new_customers_match_pandas(filters: Filters) -> None:
    frame, ref = selected(filters)
    first = first_seen(frame)
    timed = SEEN[(SEEN["ts_ms"] >= 0) & (SEEN["customer_id"] != "")]
    seen = timed.groupby("customer_id")["ts_ms"].min() // MINUTE * MINUTE
    for since in (NOW - HOUR, NOW - 10 * MINUTE, NOW - 3 * HOUR):
        rows = with_id(ref[(ref["ts_ms"] > since) & (ref["ts_ms"] <= NOW)])
        ids = set(rows["customer_id"])
        want_new = sum(1 for c in ids if seen[c] > since)
        assert customers.recent(frame, first, since, NOW) == (len(ids), want_new)
    assert customers.recent(frame, first, NOW - HOUR, NOW)[0] > 0


def mode(values: pd.Series) -> str:
    counts = values.value_counts()
    return sorted(counts[counts == counts.max()].index)[0]


@pytest.mark.parametrize("filters", CASES)
def test_behaviour_by_customer_type_matches_pandas(filters: Filters) -> None:
    frame, ref = selected(filters)
    got = customers.by_type(frame).set_index("customer_type")
    for label, rows in ref.groupby("customer_type"):
        row = got.loc[label or "(missing)"]
        assert row["transactions"] == len(rows)
        assert row["share"] == pytest.approx(len(rows) / len(ref))
        assert row["customers"] == with_id(rows)["customer_id"].nunique()
        assert row["average_amount"] == pytest.approx(rows["amount"].mean(), nan_ok=True)
        with_status = rows[rows["status"] != ""]
        approval = (with_status["status"] == "approved").mean() if len(with_status) else np.nan
        assert row["approval_rate"] == pytest.approx(approval, nan_ok=True)
        assert row["preferred_method"] == (mode(rows["payment_method"]) or "(missing)")
    assert got["transactions"].is_monotonic_decreasing and got["transactions"].sum() == len(ref)


@pytest.mark.parametrize("filters", CASES)
def test_top_customers_match_pandas(filters: Filters) -> None:
    frame, ref = selected(filters)
    first = first_seen(frame)
    got = customers.top_customers(frame, first, n=7)
    counts = with_id(ref)["customer_id"].value_counts()
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:7]
    assert list(zip(got["customer_id"], got["transactions"], strict=True)) == want
    seen = SEEN[(SEEN["ts_ms"] >= 0)].groupby("customer_id")["ts_ms"].min() // MINUTE * MINUTE
    for row in got.itertuples():
        rows = ref[ref["customer_id"] == row.customer_id]
        assert row.total_amount == pytest.approx(rows["amount"].sum())
        assert row.average_amount == pytest.approx(rows["amount"].mean())
        with_status = rows[rows["status"] != ""]
        assert row.approval_rate == pytest.approx((with_status["status"] == "approved").mean(), nan_ok=True)
        assert row.customer_type == mode(rows["customer_type"])
        assert row.preferred_method == mode(rows["payment_method"])
        assert row.first_seen.value // 1_000_000 == seen[row.customer_id]


def test_rows_without_a_customer_id_are_left_out() -> None:
    frame, ref = selected(Filters())
    assert (ref["customer_id"] == "").any()
    everyone = customers.top_customers(frame, first_seen(frame), n=5000)
    assert "" not in everyone["customer_id"].tolist()
    assert everyone["transactions"].sum() == len(with_id(ref))


def test_top_customers_with_int16_codes_whose_products_overflow_int16() -> None:
    # 12,000 customers: int16 category codes, and code * 3 customer types passes 32,767.
    n = 12_000
    ids = [f"cust_{i:05d}" for i in range(1, n + 1)]
    frame = pd.DataFrame(
        {
            "customer_id": pd.Categorical(["", *ids, ids[-1]]),
            "customer_type": pd.Categorical(["", *(["individual", "CIP", "business"] * n)[:n], "CIP"]),
            "payment_method": pd.Categorical(["", *(["online"] * n), "pos"]),
            "status": pd.Categorical(["", *(["approved"] * n), "declined"]),
            "amount": np.ones(n + 2),
            "ts_ms": np.full(n + 2, NOW),
        }
    )
    assert frame["customer_id"].array.codes.dtype == np.int16
    got = customers.top_customers(frame, np.full(n + 1, NOW), n=2)
    assert got["customer_id"].tolist() == [ids[-1], ids[0]]
    assert got["customer_type"].tolist()[0] in ("CIP", "business", "individual")
    assert got["transactions"].tolist() == [2, 1]


@given(hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(-(2**62), 2**62)))
def test_distinct_is_numpys_unique(values: np.ndarray) -> None:
    assert np.array_equal(customers.distinct(values), np.unique(values))


@pytest.mark.parametrize("kb", [7, customers.DENSE_CELLS])  # the dense table, then the sort
@given(data=st.data())
def test_distinct_pairs_are_the_set_of_pairs_in_order(kb: int, data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 200))
    a = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 50)))
    b = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 6)))
    left, right = customers.distinct_pairs(a, b, kb)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == sorted(
        set(zip(a.tolist(), b.tolist(), strict=True))
    )
