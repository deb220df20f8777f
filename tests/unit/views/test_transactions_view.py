"""Every aggregation against a plain pandas computation on the same synthetic rows; feed health levels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dashboard.core.schema import ERROR_CODES, RULE_EXPLANATIONS
from dashboard.store.buffer import RingBuffer
from dashboard.store.decode import RawMessage, to_batch
from dashboard.ui import format as fmt
from dashboard.views import health, timebins
from dashboard.views import transactions as analytics
from dashboard.views.filters import Filters
from tests import synthetic as syn

NOW = syn.NOW_MS
EVENTS = syn.events(5000, seed=11, span_ms=3 * 3_600_000)
SNAPSHOT = syn.buffer_of(EVENTS).snapshot()
REF = syn.reference(EVENTS)
COLUMNS = ["kafka_ts_ms", "amount", "status", "merchant_category", "payment_method", "merchant_id", "error_mask"]
CASES = [Filters(), Filters(window="1h"), Filters(window="15m", methods=("online",)), Filters(validity="invalid")]


def selected(filters: Filters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The selection as the app builds it (categoricals) and as plain pandas rows."""
    mask = filters.mask(SNAPSHOT, NOW)
    return SNAPSHOT.frame(COLUMNS, rows=mask), REF[mask].reset_index(drop=True)


def test_fixture_has_every_kind_of_row() -> None:
    assert REF["valid"].mean() == pytest.approx(0.9, abs=0.03)
    assert {code for codes in REF["codes"] for code in codes} == set(ERROR_CODES)
    assert (REF["merchant_id"] == syn.XSS).any()
    assert REF["amount"].isna().any()
    assert REF.loc[~REF["valid"], "amount"].notna().any()  # invalid rows with amounts: money figures leave them out


@pytest.mark.parametrize("filters", CASES)
def test_counters_match_pandas(filters: Filters) -> None:
    frame, ref = selected(filters)
    c = analytics.counters(frame, NOW, filters.window_ms)
    assert c.transactions == len(ref)
    valid = ref[ref["valid"]]  # money figures count valid transactions only
    assert c.total_amount == pytest.approx(valid["amount"].sum())
    if valid["amount"].notna().any():
        assert c.average_amount == pytest.approx(valid["amount"].mean())
    else:
        assert c.average_amount is None
    with_status = ref[ref["status"] != ""]
    assert c.approval_rate == pytest.approx((with_status["status"] == "approved").mean())
    assert c.invalid_share == pytest.approx(1 - ref["valid"].mean())
    start = ref["kafka_ts_ms"].min()
    if filters.window_ms is not None:
        start = max(start, NOW - filters.window_ms)
    assert c.per_minute == pytest.approx(len(ref) / ((NOW - start) / 60_000))
    assert (c.first_ms, c.last_ms) == (ref["kafka_ts_ms"].min(), ref["kafka_ts_ms"].max())


def test_counters_of_nothing() -> None:
    frame, _ = selected(Filters(merchants=("nobody",)))
    c = analytics.counters(frame, NOW, None)
    assert (c.transactions, c.per_minute, c.total_amount) == (0, 0.0, 0.0)
    assert c.approval_rate is c.invalid_share is c.average_amount is None


def test_per_minute_covers_at_least_one_minute() -> None:
    buffer = RingBuffer(10)
    buffer.append(to_batch([RawMessage(b"{}", NOW - 1000)] * 3))
    frame = buffer.snapshot().frame(COLUMNS)
    assert analytics.counters(frame, NOW, None).per_minute == 3.0


@pytest.mark.parametrize("column", ["status", "merchant_category", "payment_method", "merchant_id"])
@pytest.mark.parametrize("filters", CASES)
def test_breakdown_matches_groupby(column: str, filters: Filters) -> None:
    frame, ref = selected(filters)
    got = analytics.breakdown(frame, column).set_index(column)
    expected = ref.assign(key=ref[column].replace("", analytics.MISSING)).groupby("key")["amount"]
    want = pd.DataFrame({"count": expected.size(), "total": expected.sum(), "average": expected.mean()})
    assert sorted(got.index) == sorted(want.index)
    assert got["count"].to_dict() == want["count"].to_dict()
    for key in want.index:
        assert got.loc[key, "total_amount"] == pytest.approx(want.loc[key, "total"])
        if math.isnan(want.loc[key, "average"]):
            assert math.isnan(got.loc[key, "average_amount"])
        else:
            assert got.loc[key, "average_amount"] == pytest.approx(want.loc[key, "average"])
    assert got["share"].sum() == pytest.approx(1.0)
    assert list(got["count"]) == sorted(got["count"], reverse=True)


@pytest.mark.parametrize("by", ["count", "value"])
@pytest.mark.parametrize("filters", CASES)
def test_top_merchants_match_pandas(by: str, filters: Filters) -> None:
    frame, ref = selected(filters)
    got = analytics.top_merchants(frame, 5, by=by)  # type: ignore[arg-type]
    known = ref[ref["merchant_id"] != ""]
    table = known.groupby("merchant_id")["amount"].agg(["size", "sum"]).reset_index()
    key = "size" if by == "count" else "sum"
    want = table.sort_values([key, "merchant_id"], ascending=[False, True]).head(5)
    assert list(got["merchant_id"]) == list(want["merchant_id"])
    assert list(got["count"]) == list(want["size"])
    assert np.allclose(got["total_amount"], want["sum"])


def to_ms(times: pd.Series) -> pd.Series:
    return times.dt.as_unit("ms").astype("int64")


def floor_bins(ref: pd.DataFrame, width: int) -> pd.Series:
    return ref["kafka_ts_ms"] // width * width


@pytest.mark.parametrize("filters", CASES)
def test_rate_series_matches_pandas(filters: Filters) -> None:
    frame, ref = selected(filters)
    series = analytics.rate_series(frame, NOW, filters.window_ms)
    width = int((series["time"].iloc[1] - series["time"].iloc[0]).total_seconds() * 1000)
    assert len(series) <= 2 * (timebins.MAX_BINS + 1)
    assert series["count"].sum() == len(ref)
    for validity, rows in (("valid", ref[ref["valid"]]), ("invalid", ref[~ref["valid"]])):
        expected = rows.groupby(floor_bins(rows, width)).size()
        got = series[(series["validity"] == validity) & (series["count"] > 0)]
        got_ms = to_ms(got["time"])
        assert dict(zip(got_ms, got["count"], strict=True)) == expected.to_dict()
    assert (series["per_minute"] == series["count"] / (width / 60_000)).all()


def test_rate_series_spans_the_whole_window() -> None:
    frame, _ = selected(Filters(window="15m"))
    series = analytics.rate_series(frame, NOW, 15 * 60_000)
    times = to_ms(series["time"])
    assert times.min() <= NOW - 15 * 60_000 < times.min() + 60_000
    assert times.max() <= NOW < times.max() + 60_000


@pytest.mark.parametrize("filters", CASES)
def test_errors_over_time_and_counts_match_pandas(filters: Filters) -> None:
    frame, ref = selected(filters)
    exploded = ref.explode("codes").dropna(subset=["codes"])
    series = analytics.errors_over_time(frame, NOW, filters.window_ms)
    assert series.groupby("code")["count"].sum().to_dict() == exploded.groupby("codes").size().to_dict()
    counts = analytics.error_counts(frame).set_index("code")
    for code in ERROR_CODES:
        expected = int((exploded["codes"] == code).sum())
        assert counts.loc[code, "transactions"] == expected
        assert counts.loc[code, "share"] == pytest.approx(expected / len(ref))
        assert counts.loc[code, "rule"] == RULE_EXPLANATIONS[code]


def test_invalid_share_series() -> None:
    frame, _ = selected(Filters())
    series = analytics.rate_series(frame, NOW, None)
    shares = analytics.invalid_share_series(series)
    wide = series.pivot(index="time", columns="validity", values="count")
    expected = wide["invalid"] / (wide["invalid"] + wide["valid"])
    assert np.allclose(shares["invalid_share"], expected.to_numpy(), equal_nan=True)


@pytest.mark.parametrize(
    ("span_ms", "width_ms"),
    [(1, 60_000), (120 * 60_000, 60_000), (120 * 60_000 + 1, 120_000), (7 * 86_400_000, 2 * 3_600_000)],
)
def test_bin_width(span_ms: int, width_ms: int) -> None:
    assert timebins.bin_width_ms(span_ms) == width_ms


def test_time_bins_ignore_unknown_and_out_of_window_rows() -> None:
    ts = np.array([-1, NOW - 10 * 60_000, NOW - 90_000, NOW], dtype=np.int64)
    bins = analytics.time_bins(ts, NOW, 5 * 60_000)
    assert bins.index[0] == -1 and bins.index[1] == -1
    assert bins.starts[bins.index[2]] <= ts[2] < bins.starts[bins.index[2]] + bins.width
    assert bins.starts[bins.index[3]] <= NOW < bins.starts[bins.index[3]] + bins.width


def test_ranked_values_and_latest_positions() -> None:
    codes = np.array([0, 2, 2, 1, 3, 3, 3], dtype=np.int32)
    assert analytics.ranked_values(codes, ("", "b", "a", "c")) == ["c", "a", "b"]
    assert analytics.ranked_values(codes, ("", "b", "a", "c"), limit=2) == ["c", "a"]
    assert analytics.ranked_values(codes, ("", "b", "a", "c"), limit=1) == ["c"]
    mask = np.array([True, False, True, True, False])
    assert analytics.latest_positions(mask, 2).tolist() == [3, 2]
    assert analytics.latest_positions(mask, 0).tolist() == []


def test_feed_table_marks_validity_and_codes() -> None:
    positions = analytics.latest_positions(np.ones(len(SNAPSHOT), dtype=bool), 300)
    table = analytics.feed_table(SNAPSHOT.frame(["merchant_id", "amount", "error_mask"], rows=positions))
    ref = REF.iloc[positions.tolist()]
    assert list(table["valid"]) == list(ref["valid"])
    assert list(table["errors"]) == [", ".join(c) for c in ref["codes"]]
    assert "error_mask" not in table


def test_raw_payloads_follow_absolute_indexes_after_eviction() -> None:
    evs = syn.events(1000, seed=5)
    snapshot = syn.buffer_of(evs, capacity=400, chunk=150).snapshot()
    payloads = analytics.raw_payloads(snapshot)
    assert len(payloads) == 300
    kept = evs[-400:]
    for position, value in payloads.items():
        assert value == kept[position].message.value
        assert snapshot.numeric["kafka_ts_ms"][position] == kept[position].message.kafka_ts_ms
    mask = np.zeros(len(snapshot), dtype=bool)
    mask[[5, 150, 250]] = True
    assert analytics.latest_raw(snapshot, mask) == 250
    mask[250] = False
    assert analytics.latest_raw(snapshot, mask) == 150  # the first 100 rows' payloads are gone
    mask[150] = False
    assert analytics.latest_raw(snapshot, mask) is None


def test_the_latest_message_is_the_newest_by_kafka_time_not_the_last_to_arrive() -> None:
    evs = syn.events(20, seed=6)
    arrived = [*evs[:10], *evs[15:], *evs[10:15]]  # one partition's batch lands after a newer one's
    snapshot = syn.buffer_of(arrived).snapshot()
    mask = np.ones(len(snapshot), dtype=bool)
    assert analytics.latest_raw(snapshot, mask) == 14  # evs[-1], the newest
    mask[14] = False
    assert analytics.latest_raw(snapshot, mask) == 13
    mask[10:] = False
    assert analytics.latest_raw(snapshot, mask) == 9


def test_row_record_is_json_ready() -> None:
    record = analytics.row_record(SNAPSHOT.frame(analytics.RECORD_COLUMNS, rows=np.array([0])))
    assert record["transaction_id"] == (EVENTS[0].record or {}).get("transaction_id", "")
    assert record["errors"] == list(EVENTS[0].codes)
    assert isinstance(record["kafka_ts"], str)


@pytest.mark.parametrize(
    ("value", "green", "amber", "expected"),
    [
        (0.95, 0.9, 0.8, "green"),
        (0.9, 0.9, 0.8, "green"),
        (0.85, 0.9, 0.8, "amber"),
        (0.5, 0.9, 0.8, "red"),
        (0.01, 0.02, 0.05, "green"),
        (0.03, 0.02, 0.05, "amber"),
        (0.2, 0.02, 0.05, "red"),
        (None, 0.9, 0.8, "gray"),
    ],
)
def test_levels(value: float | None, green: float, amber: float, expected: str) -> None:
    assert analytics.level(value, green, amber) == expected


def test_formats() -> None:
    assert fmt.format_share(0.1234) == "12.3%"
    assert fmt.format_compact(4_951_912_345) == "4.95 B"
    assert fmt.format_compact(12_345_678) == "12.35 M"
    assert fmt.format_compact(999_999.4) == "999,999"


# --- feed health ---------------------------------------------------------------------


def figures(**overrides: object) -> dict[str, health.Figure]:
    return {f.label: f for f in health.assess(syn.health(**overrides), 10.0, 50, 100)}


def test_fresh_connected_feed_is_green_without_banner() -> None:
    got = figures()
    assert got["Broker"].level == got["Last message"].level == got["Dashboard consumer lag"].level == "green"
    assert got["Dashboard consumer lag"].value == "15"
    assert got["Buffered"].value == "50 / 100"
    assert health.banner(syn.health(), 10.0, "localhost:9092") is None


def test_broker_down_is_red_with_an_error_banner() -> None:
    assert figures(state="down")["Broker"].level == "red"
    notice = health.banner(syn.health(state="down", bootstrap="kafka:9092"), 10.0, "localhost:9092")
    assert notice is not None and notice.kind == "error"
    assert notice.text.startswith("No broker at kafka:9092, retrying")


def test_cluster_problem_is_red_with_a_warning_banner() -> None:
    problem = "TOPIC_REPLICATION_FACTOR=3 cannot be met: 1 broker(s) up at k:9092"
    got = figures(brokers=1, cluster_problem=problem)
    assert (got["Brokers up"].value, got["Brokers up"].level, got["Brokers up"].note) == ("1", "red", problem)
    assert figures(brokers=3, cluster_problem=None)["Brokers up"].level == "green"
    assert figures()["Brokers up"].level == "gray"  # not probed yet
    notice = health.banner(syn.health(cluster_problem=problem), 10.0, "x")
    assert notice is not None and notice.kind == "warning" and notice.text == f"Kafka cluster: {problem}."


def test_quiet_caught_up_feed_is_green_with_an_info_line() -> None:
    assert figures(last_message_age=18.5)["Last message"].level == "green"
    assert figures(last_message_age=18.5)["Last message"].note.startswith("quiet")
    notice = health.banner(syn.health(last_message_age=18.5), 10.0, "x")
    assert notice == health.Banner("info", "Quiet: last transaction 18.5 s ago; the feed is connected and caught up.")
    assert health.banner(syn.health(last_message_age=10.0), 10.0, "x") is None  # the edge: still live


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"last_message_age": 5.0}, "live"),
        ({"last_message_age": 10.0}, "live"),
        ({"last_message_age": 10.001}, "quiet"),
        ({"last_message_age": None}, "waiting"),
        ({"last_poll_age": 10.0, "last_message_age": 60.0}, "quiet"),
        ({"last_poll_age": 10.001}, "stalled"),
        ({"lag": {0: 999}}, "live"),
        ({"lag": {0: 500, 1: 500}}, "behind"),
        ({"lag": {0: 1000}, "last_message_age": 60.0}, "behind"),
        ({"state": "connecting", "last_message_age": None}, "connecting"),
        ({"state": "down", "last_poll_age": 60.0, "lag": {0: 5000}}, "down"),
    ],
)
def test_freshness_verdict_at_its_edges(overrides: dict[str, object], expected: str) -> None:
    assert health.freshness(syn.health(**overrides), 10.0) == expected


def test_stalled_or_behind_feed_is_stale_with_a_warning() -> None:
    stalled = syn.health(last_poll_age=42.0, last_message_age=42.0)
    notice = health.banner(stalled, 10.0, "x")
    assert notice is not None and notice.kind == "warning" and "42.0 s" in notice.text and "not live" in notice.text
    got = {f.label: f for f in health.assess(stalled, 10.0, 50, 100)}
    assert got["Feed loop"].level == got["Last message"].level == "amber"
    behind = syn.health(lag={0: 2500}, last_message_age=30.0)
    notice = health.banner(behind, 10.0, "x")
    assert notice is not None and notice.kind == "warning" and "2,500 messages behind" in notice.text
    assert figures(lag={0: 2500}, last_message_age=30.0)["Last message"].level == "amber"


@pytest.mark.parametrize(("lag", "expected"), [(999, "green"), (1000, "amber"), (9999, "amber"), (10_000, "red")])
def test_lag_levels(lag: int, expected: str) -> None:
    assert figures(lag={0: lag})["Dashboard consumer lag"].level == expected
    assert figures(ingest_lag=lag)["Ingest worker lag"].level == expected


def test_health_without_fields_or_messages() -> None:
    got = {f.label: f for f in health.assess(object(), 10.0, 0, 100)}
    assert all(f.level in ("gray", None) for f in got.values())
    assert got["Broker"].level == got["Dashboard consumer lag"].level == "gray"
    assert health.banner(None, 10.0, "x") is None
    waiting = health.banner(syn.health(last_message_age=None, state="connecting"), 10.0, "x")
    assert waiting is not None and waiting.kind == "info" and waiting.text.startswith("Connecting to")


def test_health_figures_read_the_feeds_health_report() -> None:
    report = syn.health(
        last_message_age=30.0,
        newest_kafka_age=31.0,
        lag={0: 20_000},
        invalid_counts={"ERR_TIME": 3},
        messages_total=99,
        ingest_lag=5,
        error_records=7,
        message="connected to k:9092; waiting for topic t",
    )
    got = {f.label: f for f in health.assess(report, 10.0, 0, 10)}
    assert got["Last message"].level == "amber" and got["Dashboard consumer lag"].level == "red"
    assert (got["Messages received"].value, got["Ingest worker lag"].value) == ("99", "5")
    assert got["Error log records"].value == "7"
    assert health.invalid_by_code(report) == {"ERR_TIME": 3}
    report.last_message_age = None
    report.lag = {}
    notice = health.banner(report, 10.0, "x")
    assert notice is not None and notice.text == "Connected to k:9092; waiting for topic t."
    report.state = "down"
    report.message = "feed stopped: boom"
    notice = health.banner(report, 10.0, "x")
    assert notice is not None and notice.kind == "error" and notice.text.startswith("Feed stopped: boom.")
