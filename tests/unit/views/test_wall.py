"""The wall screen's pure parts: which alerts are new, how long banners stay, what they say, the tone, time axes."""

from __future__ import annotations

import io
import wave
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from dashboard.core.schema import FRAUD_AMOUNT, FRAUD_GEO, FRAUD_VELOCITY
from dashboard.store.alert_log import AlertLog
from dashboard.ui.charts.axes import MAX_TICKS, span_of, tick_values, time_axis, time_ticks
from dashboard.views import wall
from dashboard.views.fraud import evidence_text

OPEN_MS = 1_750_000_000_000


def alert(n: int, raised_ms: int, rule: str = FRAUD_VELOCITY, **evidence: Any) -> dict[str, Any]:
    """An alert row as `AlertLog.since` returns it (raw, as `parse_alert` makes it)."""
    return {"rule": rule, "customer_id": f"cust_{n}", "kafka_time": raised_ms, "count": 6, "span_seconds": 40.0} | (
        evidence
    )


# --- the alert log's sequence -------------------------------------------------------


def test_alert_log_since_returns_what_came_after_a_total_even_past_capacity() -> None:
    log = AlertLog(capacity=3)
    assert log.since(0) == (0, [])
    log.extend([alert(i, OPEN_MS) for i in range(2)])
    total, rows = log.since(0)
    assert total == 2 and [r["customer_id"] for r in rows] == ["cust_0", "cust_1"]
    log.extend([alert(i, OPEN_MS) for i in range(2, 7)])  # 5 more: 4 evicted
    total, rows = log.since(2)
    assert total == 7 and [r["customer_id"] for r in rows] == ["cust_4", "cust_5", "cust_6"]  # the kept ones
    assert log.since(6) == (7, [alert(6, OPEN_MS)])
    assert log.since(7) == (7, []) and log.since(99) == (7, [])
    log.extend([])
    assert log.total == 7


# --- banners -------------------------------------------------------------------


def test_alerts_in_the_log_when_the_screen_opens_are_never_new() -> None:
    state = wall.opened(total=5, now_ms=OPEN_MS)
    state, new = wall.advance(state, 5, [], OPEN_MS + 1000, 60)
    assert new == 0 and state.shown == () and state.seen == 5


def test_a_new_alert_shows_for_alert_seconds_from_when_it_was_first_shown() -> None:
    state = wall.opened(0, OPEN_MS)
    row = alert(1, OPEN_MS + 3_000)
    state, new = wall.advance(state, 1, [row], OPEN_MS + 4_000, alert_seconds=8)
    assert new == 1 and [s.row for s in state.shown] == [row] and state.seen == 1
    state, new = wall.advance(state, 1, [], OPEN_MS + 11_999, alert_seconds=8)
    assert new == 0 and len(state.shown) == 1  # 7.999 s after it was shown
    state, new = wall.advance(state, 1, [], OPEN_MS + 12_000, alert_seconds=8)
    assert state.shown == ()  # exactly 8 s: gone


def test_an_alert_raised_before_the_screen_opened_is_not_new() -> None:
    """A reload opens a new screen; a restarted server may read old alerts again: neither shows."""
    state = wall.opened(0, OPEN_MS)
    old = alert(1, OPEN_MS - wall.GRACE_MS - 1)
    skewed = alert(2, OPEN_MS - wall.GRACE_MS)  # a worker clock a little behind ours: still new
    state, new = wall.advance(state, 2, [old, skewed], OPEN_MS + 500, 60)
    assert new == 1 and [s.row["customer_id"] for s in state.shown] == ["cust_2"]
    nameless = {"rule": FRAUD_VELOCITY, "customer_id": "x", "kafka_time": None}
    assert wall.advance(state, 3, [nameless], OPEN_MS + 600, 60)[1] == 0


def test_at_most_three_banners_stack_the_newest_kept() -> None:
    state = wall.opened(0, OPEN_MS)
    state, new = wall.advance(state, 2, [alert(1, OPEN_MS), alert(2, OPEN_MS)], OPEN_MS + 1_000, 60)
    state, new = wall.advance(state, 5, [alert(i, OPEN_MS) for i in (3, 4, 5)], OPEN_MS + 2_000, 60)
    assert new == 3 and [s.row["customer_id"] for s in state.shown] == ["cust_3", "cust_4", "cust_5"]
    assert all(s.since_ms == OPEN_MS + 2_000 for s in state.shown)
    assert wall.advance(state, 5, [], OPEN_MS + 3_000, 60, limit=0)[0].shown == ()


def test_banner_text_is_rule_evidence_and_age_and_the_customer_is_cut() -> None:
    now = OPEN_MS + 10_000
    assert wall.headline(alert(1, OPEN_MS), now) == "Velocity · 6 transactions in 40.0 s · 10 s ago"
    geo = {"rule": FRAUD_GEO, "distance_km": 712.31, "minutes": 1.5, "kafka_time": now - 300_000}
    assert wall.headline(geo, now) == "Impossible travel · 712.3 km apart in 1.50 min · 5 min ago"
    amount = {"rule": FRAUD_AMOUNT, "amount": 9e6, "average": 1e5, "ratio": 90, "kafka_time": now}
    assert wall.headline(amount, now) == "Amount anomaly · 9,000,000 IRR vs average 100,000 (90.0x) · 0 s ago"
    assert wall.customer_text("cust_303") == "cust_303"
    long = wall.customer_text("<b>" + "x" * 100)
    assert len(long) == wall.MAX_CUSTOMER_CHARS and long.endswith("…") and long.startswith("<b>")


@pytest.mark.parametrize("bad", [None, "12", [1], {"a": 1}, True, float("nan"), float("inf")])
def test_evidence_of_a_bad_record_prints_a_question_mark(bad: object) -> None:
    row = {"rule": FRAUD_GEO, "distance_km": bad, "minutes": 2}
    assert evidence_text(row) == "? km apart in 2.00 min"
    assert evidence_text({"rule": "unknown"}) == ""


def test_tone_is_a_short_mono_wav() -> None:
    data = wall.tone_wav(frequency=660, seconds=0.25, rate=8_000)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 8_000, 2_000)
        frames = w.readframes(2_000)
    samples = [int.from_bytes(frames[i : i + 2], "little", signed=True) for i in range(0, len(frames), 2)]
    assert samples[0] == 0 and max(samples) > 15_000 and abs(samples[-1]) < 500  # faded in and out
    assert len(data) < 10_000


# --- time axes -----------------------------------------------------------------------

D3_TO_STRFTIME = {"%H:%M:%S": "%H:%M:%S", "%H:%M": "%H:%M", "%b %d %H:%M": "%b %d %H:%M", "%b %d": "%b %d"}


@pytest.mark.parametrize(
    "span",
    [timedelta(seconds=s) for s in (0, 1, 7, 30, 59, 61, 150, 300, 299, 900, 3600, 3 * 3600, 86_399)]
    + [timedelta(days=d) for d in (1, 1.5, 3, 8, 20, 60)],
)
def test_time_axis_labels_are_distinct_at_every_span(span: timedelta) -> None:
    unit, step, fmt = time_ticks(span)
    start = datetime(2026, 11, 29, 23, 47, 13, tzinfo=UTC)
    times = tick_values(start, start + span, unit, step)
    labels = [t.strftime(D3_TO_STRFTIME[fmt]) for t in times]
    assert len(set(labels)) == len(labels), (span, unit, step, labels)
    assert len(times) <= MAX_TICKS + 1 or unit == "month"


def test_short_windows_show_seconds_and_long_ones_dates() -> None:
    assert time_ticks(timedelta(minutes=1))[2] == "%H:%M:%S"  # the 00:30 00:30 00:30 case
    assert time_ticks(timedelta(minutes=15))[:2] == ("minute", 2)
    assert time_ticks(timedelta(hours=5))[2] == "%H:%M"
    assert time_ticks(timedelta(days=3))[2] == "%b %d %H:%M"
    assert time_ticks(timedelta(days=8))[2] == "%b %d"


def test_tick_values_are_whole_multiples_within_the_span() -> None:
    start = datetime(2026, 11, 29, 23, 47, 13, tzinfo=UTC)
    assert tick_values(start, start + timedelta(seconds=50), "second", 15) == [
        *(datetime(2026, 11, 29, 23, 47, s, tzinfo=UTC) for s in (15, 30, 45)),
        datetime(2026, 11, 29, 23, 48, tzinfo=UTC),
    ]
    assert tick_values(start, start + timedelta(days=70), "month", 1) == [
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        datetime(2027, 2, 1, tzinfo=UTC),
    ]
    weeks = tick_values(start, start + timedelta(days=15), "week", 1)
    assert [w.weekday() for w in weeks] == [0, 0, 0] and weeks[0] == datetime(2026, 11, 30, tzinfo=UTC)
    on_tick = datetime(2026, 11, 29, 23, 48, tzinfo=UTC)
    assert tick_values(on_tick, on_tick, "minute", 1) == [on_tick]
    assert tick_values(on_tick, start, "minute", 1) == []


def test_time_axis_of_a_column() -> None:
    times = pd.Series(pd.to_datetime([OPEN_MS, OPEN_MS + 90_000], unit="ms", utc=True))
    assert span_of(times) == timedelta(seconds=90)
    assert span_of(times[:1]) == timedelta(0) and span_of(pd.Series([], dtype="datetime64[ms, UTC]")) == timedelta(0)
    axis = time_axis(times).to_dict()
    assert axis["format"] == "%H:%M:%S"
    expected = range(OPEN_MS + 5_000, OPEN_MS + 90_001, 15_000)  # OPEN_MS is 40 s past a minute
    assert axis["values"] == [datetime.fromtimestamp(ms / 1000, UTC).isoformat() for ms in expected]
    assert "values" not in time_axis(pd.Series([], dtype="datetime64[ms, UTC]")).to_dict()
