"""Unit tests of the fraud detectors: every rule at and around its edges, lateness, state bounds, replay of Pulse."""

from __future__ import annotations

import copy
import math
import random
import time
import tracemalloc
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from dashboard.core.schema import ERR_AMOUNT, ERR_DEVICE, ERR_TIME, FRAUD_AMOUNT, FRAUD_GEO, FRAUD_RULES, FRAUD_VELOCITY
from dashboard.core.settings import Settings
from dashboard.core.validation import Transaction, check, decode_plain
from dashboard.fraud import (
    Alert,
    AmountDetector,
    FraudDetector,
    FraudInput,
    GeoDetector,
    Limits,
    TransactionLike,
    VelocityDetector,
    detector_input,
    haversine_km,
    plain_input,
)
from dashboard.fraud.rules import EARTH_RADIUS_KM
from dashboard.fraud.windows import EVICT_EVERY_MS
from dashboard.pulse.batch import FraudLabel, Message
from dashboard.pulse.events import Streams, history, make_factory
from dashboard.pulse.model import Population
from dashboard.pulse.profile import Profile

T0 = 1_745_000_000_000  # epoch ms
TEHRAN = (35.7219, 51.3347)
ISFAHAN = (32.6546, 51.6680)
NOW = datetime(2025, 4, 26, 12, 19, 10, tzinfo=UTC).timestamp()
DAY = 86_400.0


def tx(
    seconds: float,
    customer: str = "cust_1",
    amount: float = 100_000,
    point: tuple[float, float] | None = TEHRAN,
    tid: str | None = None,
) -> FraudInput:
    """A transaction `seconds` after T0 (ms precision)."""
    ms = T0 + round(seconds * 1000)
    lat, lng = point if point is not None else (None, None)
    return FraudInput(tid or f"{customer}@{ms}", customer, ms, amount, lat, lng)


def north(km: float, of: tuple[float, float] = TEHRAN) -> tuple[float, float]:
    """The point `km` due north of `of` (along a meridian the great-circle distance is R * dlat)."""
    return of[0] + math.degrees(km / EARTH_RADIUS_KM), of[1]


def feed(detector: VelocityDetector | GeoDetector | AmountDetector | FraudDetector, events: list[FraudInput]) -> list:
    """Observe `events` in order; return the alerts, flattened."""
    out: list[Alert] = []
    for event in events:
        result = detector.observe(event)
        if isinstance(result, list):
            out.extend(result)
        elif result is not None:
            out.append(result)
    return out


# --- velocity -------------------------------------------------------------------------------------


def test_five_in_two_minutes_is_no_alert_the_sixth_alerts() -> None:
    detector = VelocityDetector()
    events = [tx(s) for s in (0, 20, 40, 60, 80, 100)]
    assert feed(detector, events[:5]) == []
    (alert,) = feed(detector, events[5:])
    assert alert.rule == FRAUD_VELOCITY
    assert alert.customer_id == "cust_1"
    assert alert.transaction_ids == tuple(e.transaction_id for e in events)
    assert alert.evidence == {"count": 6, "span_seconds": 100.0}
    assert alert.event_time_ms == T0 + 100_000


@pytest.mark.parametrize(("last_s", "alerts"), [(119.999, 1), (120.0, 0), (120.001, 0)])
def test_velocity_window_is_open_at_two_minutes_to_the_millisecond(last_s: float, alerts: int) -> None:
    """The window is (t - 120 s, t]: six events spanning 119.999 s alert, 120.000 s do not."""
    events = [tx(s) for s in (0, 10, 20, 30, 40, last_s)]
    assert len(feed(VelocityDetector(), events)) == alerts


def test_one_alert_per_burst_then_again_two_minutes_later() -> None:
    """A burst of 8 alerts once; a flood of one event per 15 s alerts every 2 minutes of window end."""
    burst = [tx(s) for s in range(0, 80, 10)]
    alerts = feed(VelocityDetector(), burst)
    assert [a.event_time_ms - T0 for a in alerts] == [50_000]

    flood = [tx(s) for s in range(0, 301, 15)]
    alerts = feed(VelocityDetector(), flood)
    assert [a.event_time_ms - T0 for a in alerts] == [75_000, 195_000]
    assert alerts[1].evidence == {"count": 8, "span_seconds": 105.0}  # events 90..195 s in (75 s, 195 s]


def test_customers_are_counted_separately() -> None:
    events = [tx(10 * i, customer=f"cust_{i % 2}") for i in range(10)]  # 5 each within 90 s
    assert feed(VelocityDetector(), events) == []


def test_velocity_counts_a_late_event_in_every_window_it_falls_in() -> None:
    """A 40 s late event completes six in 110 s; the alert's window ends at the newest event."""
    events = [tx(s) for s in (30, 60, 90, 120, 140)]
    late = tx(100)
    alerts = feed(VelocityDetector(), [*events, late])
    (alert,) = alerts
    assert alert.event_time_ms == T0 + 140_000
    in_time_order = sorted([*events, late], key=lambda e: e.timestamp_ms)
    assert alert.transaction_ids == tuple(e.transaction_id for e in in_time_order)
    assert alert.evidence == {"count": 6, "span_seconds": 110.0}


@pytest.mark.parametrize(("late_s", "accepted"), [(80.0, True), (79.999, False)])
def test_lateness_tolerance_is_60_seconds(late_s: float, accepted: bool) -> None:
    """An event up to 60.000 s older than the customer's newest counts; 60.001 s is too late."""
    detector = FraudDetector()
    alerts = feed(detector, [*(tx(s) for s in (100, 110, 120, 130, 140)), tx(late_s)])
    assert [a.rule for a in alerts] == ([FRAUD_VELOCITY] if accepted else [])
    assert detector.late_events == (0 if accepted else 1)


def test_a_too_late_event_still_counts_for_amounts() -> None:
    detector = FraudDetector()
    feed(detector, [tx(s, amount=100) for s in (100, 101, 102, 103, 104, 200)])
    (alert,) = feed(detector, [tx(10, amount=10_000)])
    assert alert.rule == FRAUD_AMOUNT
    assert detector.late_events == 1


def test_velocity_needs_more_kept_than_counted() -> None:
    with pytest.raises(ValueError, match="max_kept"):
        Limits(velocity_count=5, max_kept=5)


# --- geographical impossibility -------------------------------------------------------------------


def test_haversine_matches_the_meridian_arc() -> None:
    assert haversine_km(*TEHRAN, *north(123.456)) == pytest.approx(123.456, abs=1e-9)
    assert haversine_km(0.0, 0.0, 1.0, 0.0) == pytest.approx(EARTH_RADIUS_KM * math.pi / 180, rel=1e-12)
    assert haversine_km(*TEHRAN, *ISFAHAN) == pytest.approx(haversine_km(*ISFAHAN, *TEHRAN))
    assert 330 < haversine_km(*TEHRAN, *ISFAHAN) < 350


@pytest.mark.parametrize(("km", "alerts"), [(49.9, 0), (49.999, 0), (50.001, 1), (50.1, 1)])
def test_geo_needs_more_than_50_km(km: float, alerts: int) -> None:
    result = feed(GeoDetector(), [tx(0), tx(60, point=north(km))])
    assert len(result) == alerts
    if alerts:
        assert result[0].evidence == {"distance_km": km, "minutes": 1.0}


@pytest.mark.parametrize(
    ("gap_s", "alerts"), [(299, 1), (299.999, 1), (300.0, 0), (301, 0)], ids=["4m59s", "4m59.999s", "5m00s", "5m01s"]
)
def test_geo_needs_less_than_5_minutes(gap_s: float, alerts: int) -> None:
    result = feed(GeoDetector(), [tx(0, tid="tehran"), tx(gap_s, point=ISFAHAN, tid="isfahan")])
    assert len(result) == alerts
    if alerts:
        (alert,) = result
        assert alert.rule == FRAUD_GEO
        assert alert.transaction_ids == ("tehran", "isfahan")
        assert alert.event_time_ms == T0 + round(gap_s * 1000)
        assert alert.evidence["minutes"] == round(gap_s / 60, 3)


def test_geo_late_event_pairs_with_a_newer_one() -> None:
    """Isfahan at 100 s arrives first, Tehran at 70 s 30 s late: one alert, pair in time order."""
    (alert,) = feed(GeoDetector(), [tx(100, point=ISFAHAN, tid="isfahan"), tx(70, tid="tehran")])
    assert alert.transaction_ids == ("tehran", "isfahan")
    assert alert.event_time_ms == T0 + 100_000


@pytest.mark.parametrize(("late_s", "alerts"), [(0.0, 0), (0.001, 1)])
def test_geo_window_edge_holds_for_late_events_too(late_s: float, alerts: int) -> None:
    """With a lateness above the window, a late event exactly 5 minutes before a newer one is no pair."""
    geo = GeoDetector(Limits(lateness_ms=400_000))
    assert len(feed(geo, [tx(300, point=ISFAHAN), tx(late_s)])) == alerts


def test_geo_names_the_farthest_partner_the_newest_on_a_tie() -> None:
    mashhad = (36.2605, 59.6168)
    geo = GeoDetector()
    feed(geo, [tx(0, tid="tehran"), tx(10, point=ISFAHAN, tid="isfahan")])
    (alert,) = feed(geo, [tx(20, point=mashhad, tid="mashhad")])
    assert haversine_km(*ISFAHAN, *mashhad) > haversine_km(*TEHRAN, *mashhad)
    assert alert.transaction_ids == ("isfahan", "mashhad")
    assert alert.evidence["distance_km"] == round(haversine_km(*ISFAHAN, *mashhad), 3)
    feed(geo, [tx(30, point=ISFAHAN, tid="isfahan2")])
    (alert,) = feed(geo, [tx(40, point=mashhad, tid="mashhad2")])
    assert alert.transaction_ids == ("isfahan2", "mashhad2")


def test_geo_skips_missing_coordinates_and_other_customers() -> None:
    detector = FraudDetector()
    assert feed(detector, [tx(0), tx(60, point=None)]) == []
    assert feed(detector, [tx(61, customer="cust_2", point=ISFAHAN)]) == []


# --- amount anomaly -------------------------------------------------------------------------------


def test_amount_is_judged_only_after_min_history() -> None:
    assert feed(AmountDetector(), [*(tx(s, amount=100) for s in range(4)), tx(4, amount=1_000_000)]) == []


@pytest.mark.parametrize(("amount", "alerts"), [(1000, 0), (1001, 1)])
def test_amount_above_ten_times_the_average(amount: int, alerts: int) -> None:
    """10x exactly is no alert; 10.01x is (integer arithmetic, no float rounding)."""
    events = [*(tx(s, amount=100) for s in range(5)), tx(5, amount=amount, tid="spike")]
    result = feed(AmountDetector(), events)
    assert len(result) == alerts
    if alerts:
        (alert,) = result
        assert alert.rule == FRAUD_AMOUNT
        assert alert.transaction_ids == ("spike",)
        assert alert.evidence == {"amount": 1001, "average": 100.0, "ratio": 10.01, "history": 5}


def test_float_amounts_at_the_edge() -> None:
    history_ = [tx(s, amount=100.5) for s in range(5)]
    assert feed(AmountDetector(), [*history_, tx(5, amount=1005.0)]) == []
    assert len(feed(AmountDetector(), [*history_, tx(5, amount=1005.01)])) == 1


def test_the_anomalous_amount_joins_the_average() -> None:
    detector = AmountDetector()
    feed(detector, [tx(s, amount=100) for s in range(5)])
    assert len(feed(detector, [tx(5, amount=1001)])) == 1
    # The average is now 1501 / 6 = 250.17: 2000 is 8x, no alert; 2502 is above 10x.
    assert feed(detector, [tx(6, amount=2000)]) == []
    (alert,) = feed(detector, [tx(7, amount=35_100)])
    assert alert.evidence["average"] == round(3501 / 7, 2)
    assert alert.evidence["history"] == 7


def test_zero_average_alerts_with_no_ratio() -> None:
    (alert,) = feed(AmountDetector(), [*(tx(s, amount=0) for s in range(5)), tx(5, amount=1)])
    assert alert.evidence["ratio"] is None
    assert orjson.loads(alert.to_json())["evidence"]["ratio"] is None


@pytest.mark.parametrize("detector", [AmountDetector, FraudDetector], ids=["amount", "combined"])
def test_amount_averages_are_evicted_after_the_idle_time_at_its_edge(detector: type) -> None:
    """A customer unseen for more than idle_ms of event time is forgotten at the next look (looks are at most
    once per EVICT_EVERY_MS of event time); exactly idle_ms is kept."""
    assert EVICT_EVERY_MS == 60_000  # the times below are chosen for looks a minute apart
    d = detector(Limits(amount_idle_ms=60_000))
    amount = d.amount if isinstance(d, FraudDetector) else d
    feed(d, [tx(0, customer="old", amount=100), tx(30, customer="other", amount=100)])  # a look at 0 s
    feed(d, [tx(90, customer="new", amount=100)])  # a look: "old" idle 90 s goes, "other" idle exactly 60 s stays
    assert list(amount.stats) == ["other", "new"] and amount.evicted == 1
    feed(d, [tx(149, customer="new", amount=100)])  # no look before 150 s: "other" (idle 119 s) still held
    assert list(amount.stats) == ["other", "new"]
    feed(d, [tx(150, customer="new", amount=100)])  # the next look: "other" goes
    assert list(amount.stats) == ["new"] and amount.evicted == 2
    # Forgotten: a returning customer starts a new average (one transaction so far).
    feed(d, [tx(151, customer="old", amount=100)])
    assert amount.stats["old"][:2] == [1, 100]


@pytest.mark.parametrize("detector", [AmountDetector, FraudDetector], ids=["amount", "combined"])
def test_amount_averages_are_bounded_least_recently_seen_first(detector: type) -> None:
    d = detector(Limits(max_customers=3))
    amount = d.amount if isinstance(d, FraudDetector) else d
    feed(d, [tx(i, customer=f"c{i}", amount=100) for i in range(3)])
    feed(d, [tx(3, customer="c0", amount=100)])  # c0 seen again: c1 is now the least recently seen
    assert list(amount.stats) == ["c1", "c2", "c0"]
    feed(d, [tx(4, customer="c3", amount=100)])  # a fourth customer: c1 goes
    assert list(amount.stats) == ["c2", "c0", "c3"] and amount.evicted == 1
    assert amount.stats["c0"] == [2, 200, T0 + 3000]


def test_amount_needs_a_history_of_at_least_one() -> None:
    with pytest.raises(ValueError, match="min_history"):
        Limits(min_history=0)


# --- combined detector, state, determinism --------------------------------------------------------


def test_one_event_can_raise_every_rule_in_a_fixed_order() -> None:
    events = [tx(s, amount=100) for s in range(0, 50, 10)]
    alerts = feed(FraudDetector(), [*events, tx(55, amount=10_000, point=ISFAHAN)])
    assert [a.rule for a in alerts] == list(FRAUD_RULES)


def test_incomplete_transactions_are_ignored() -> None:
    broken = Transaction(*([None] * 18))
    assert FraudDetector().observe(broken) == []


def test_state_is_evicted_after_the_windows_except_averages() -> None:
    detector = FraudDetector()
    for i in range(1000):
        detector.observe(tx(i * 0.1, customer=f"cust_{i}"))
    size = detector.state_size()
    assert (size.averages, size.velocity_customers, size.geo_customers) == (1000, 1000, 1000)
    # Velocity keeps customers seen within 120 s + 60 s lateness of the newest event, geo within 300 s + 60 s.
    detector.observe(tx(99.9 + 180.001, customer="cust_x"))
    assert detector.state_size() == (1001, 1, 1, 1001, 1001)
    detector.observe(tx(99.9 + 360.002, customer="cust_y"))  # cust_x is now 180.001 s old
    assert detector.state_size() == (1002, 1, 1, 2, 2)


def test_one_customers_window_is_trimmed_and_capped() -> None:
    detector = FraudDetector()
    feed(detector, [tx(s) for s in range(0, 3600, 10)])
    size = detector.state_size()
    assert size.velocity_events == 18  # events in (t - 180 s, t]
    assert size.geo_events == 36  # events in (t - 360 s, t]
    feed(detector, [tx(3600, tid=f"flood{i}") for i in range(500)])
    size = detector.state_size()
    assert size.velocity_events == 64 and size.geo_events == 64


def test_idle_customers_are_dropped_within_a_minute_and_active_ones_kept() -> None:
    """What FraudDetector holds (its shared window): customers whose newest event is within 360 s of the newest,
    and those beyond it until the next idle check (at most EVICT_EVERY_MS of event time later)."""
    detector = FraudDetector()
    for s in range(0, 2001, 100):  # a customer is filed under its first event: its newest is checked when due
        feed(detector, [tx(s, customer="regular"), *(tx(s + d, customer=f"twice_{s}") for d in (10, 50))])
    held = detector.windows
    assert held.held() >= {"regular", *(f"twice_{s}" for s in range(1700, 2001, 100))}  # newest at 2050 s
    assert held.held() <= {"regular", *(f"twice_{s}" for s in range(1600, 2001, 100))}  # idle a minute at most
    assert len(held.events_of("regular")) == 4  # 1700..2000 s
    edge = 2410  # newest - 360 s = 2050 s
    detector.observe(tx(edge, customer="edge"))
    assert "twice_2000" in held  # newest at 2050 s: not dropped before its time...
    step = EVICT_EVERY_MS // 1000
    detector.observe(tx(edge + step + 1, customer="edge"))
    assert held.held() == {"edge"}  # ...and dropped by the next check, at most EVICT_EVERY_MS after it


def test_a_customer_seen_once_holds_one_entry_and_its_second_event_is_judged_against_it() -> None:
    """Millions of distinct customers: one that paid once holds its entry alone (no deque), about 0.4 kB in all."""
    detector = FraudDetector()
    once = [tx(i / 100, customer=f"once_{i}", tid=f"t{i}") for i in range(20_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        feed(detector, once)
        per_customer = (tracemalloc.get_traced_memory()[0] - before) / len(once)
    finally:
        tracemalloc.stop()
    assert per_customer < 600  # 1,255 bytes with a Recent and its deque each (measured)
    windows = detector.windows
    assert not windows.customers and len(windows.single) == len(once)
    # Velocity reads the last 180 s (120 s + 60 s lateness) of the 200 s: 18,001 of them; geo (360 s) all.
    assert detector.state_size() == (len(once), 18_001, 18_001, len(once), len(once))
    # The second event of one of them, 100 km away a minute later: judged against the first.
    alerts = detector.observe(tx(61, customer="once_500", point=ISFAHAN))
    assert [a.rule for a in alerts] == [FRAUD_GEO]
    assert alerts[0].transaction_ids == ("t500", "once_500@" + str(T0 + 61_000))
    assert "once_500" in windows.customers and "once_500" not in windows.single


@pytest.mark.parametrize("make", [FraudDetector, VelocityDetector, GeoDetector], ids=lambda m: m.__name__)
def test_at_most_max_customers_windows_the_least_recently_active_dropped_first(make: Any) -> None:
    """A flood of distinct customers, 40 a minute, 60 held at most: the regular customer, who pays every minute, stays.

    Least recently active by minute of event time; within a minute, first seen first.
    """
    detector = make(Limits(max_customers=60))
    windows = detector.windows
    held_most = 0
    for minute in range(8):
        feed(detector, [tx(minute * 60, customer="regular")])
        for i in range(40):
            feed(detector, [tx(minute * 60 + 1 + i, customer=f"once_{minute}_{i}")])
            held_most = max(held_most, len(windows.held()))
    assert held_most == 60
    assert windows.held() == {"regular", *(f"once_6_{i}" for i in range(21, 40)), *(f"once_7_{i}" for i in range(40))}
    assert windows.shed == 1 + 8 * 40 - 60
    # The regular customer's window is whole: with five more payments, six within two minutes raise velocity.
    alerts = feed(detector, [tx(7 * 60 + s, customer="regular", point=None) for s in (45, 50, 55, 56, 57)])
    assert [a.rule for a in alerts] == ([] if make is GeoDetector else [FRAUD_VELOCITY])


def test_state_stays_within_max_customers_whatever_the_number_of_distinct_customers() -> None:
    detector = FraudDetector(Limits(max_customers=1000))

    def held_bytes(customers: int) -> int:
        tracemalloc.start()
        try:
            feed(detector, [tx(i / 1000, customer=f"c{customers}_{i}", tid=f"t{i}") for i in range(customers)])
            return tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

    small, large = held_bytes(2_000), held_bytes(50_000)
    assert detector.state_size().averages == 1000 and len(detector.windows.held()) == 1000
    assert detector.held() == {"averages": 1000, "window_customers": 1000}
    assert large < small + 100_000  # 25 times the customers: the same state (within 100 kB of noise)


def located_stream(seed: int, count: int, lateness_ms: int, unlocated: float) -> list[FraudInput]:
    """A random partition: 12 customers (often the same one again), mostly around Tehran, now and then another
    city, a NaN latitude or no coordinates; events up to `lateness_ms` older than the newest, equal times, idle gaps.
    """
    rng = random.Random(seed)
    cities = [TEHRAN, ISFAHAN, (36.2605, 59.6168)]
    newest, customer = T0, "cust_0"
    events = []
    for j in range(count):
        gap = rng.choice([0, rng.randint(0, 3000), rng.randint(0, 40_000)])
        newest += rng.randint(300_000, 900_000) if rng.random() < 0.005 else gap
        t = newest - rng.choice([0, 0, 0, rng.randint(0, lateness_ms)])
        if rng.random() < 0.6:
            customer = f"cust_{rng.randrange(12)}"
        point: tuple[float | None, float | None]
        if rng.random() < unlocated:
            point = (None, None)
        elif rng.random() < 0.002:
            point = (math.nan, 51.0)
        else:
            city = TEHRAN if rng.random() < 0.9 else rng.choice(cities)
            point = (city[0] + rng.uniform(-0.2, 0.2), city[1] + rng.uniform(-0.2, 0.2))
        amount = 50_000 if rng.random() < 0.02 else rng.choice([100, 150, 200])
        events.append(FraudInput(f"tx{j}", customer, t, amount, *point))
    return events


@pytest.mark.parametrize(
    ("params", "unlocated"),
    [
        ({}, 0.05),
        ({"velocity_window_ms": 400_000, "geo_window_ms": 100_000, "lateness_ms": 0}, 0.05),
        ({"velocity_count": 2, "geo_km": 20.0, "max_kept": 8, "lateness_ms": 200_000}, 0.0),  # floods hit the cap
    ],
    ids=["default", "velocity-window-longer", "small-cap"],
)
def test_fraud_detector_raises_exactly_the_alerts_of_the_single_rule_detectors(
    params: dict[str, Any], unlocated: float
) -> None:
    """FraudDetector's shared window and shortcuts (velocity's newest-run check, geo's box) change no alert.

    The single-rule detectors run their rule in full on every event. (Within
    the bounds of FraudDetector's docstring: no event more than lateness_ms
    older than one before it, no flood that mixes in events without coordinates.)
    """
    detector = FraudDetector(Limits(**params))
    rules = (VelocityDetector(detector.limits), GeoDetector(detector.limits), AmountDetector(detector.limits))
    lateness = int(params.get("lateness_ms", 60_000))
    raised: dict[str, int] = defaultdict(int)
    for event in located_stream(7, 6000, lateness, unlocated):
        expected = [alert for rule in rules if (alert := rule.observe(event)) is not None]
        assert detector.observe(event) == expected, event
        for alert in expected:
            raised[alert.rule] += 1
    assert detector.late_events == rules[0].windows.late
    assert all(raised[rule] >= 10 for rule in FRAUD_RULES), raised


def test_alert_json_record() -> None:
    alert = Alert(FRAUD_GEO, "cust_7", ("a", "b"), {"distance_km": 340.5, "minutes": 1.5}, T0 + 1)
    assert orjson.loads(alert.to_json()) == {
        "rule": "geo_impossible",
        "customer_id": "cust_7",
        "transaction_ids": ["a", "b"],
        "event_time": "2025-04-18T18:13:20.001Z",
        "event_time_ms": T0 + 1,
        "evidence": {"distance_km": 340.5, "minutes": 1.5},
    }
    assert hash(alert) == hash(Alert(FRAUD_GEO, "cust_7", ("a", "b"), {}, T0 + 1))


# --- inputs ---------------------------------------------------------------------------------------


def test_which_checked_transactions_feed_the_detectors(pulse_mixed: list[Message]) -> None:
    seen = set()
    for m in pulse_mixed:
        checked = check(m.value, m.timestamp_ms)
        fed = detector_input(checked)
        if ERR_TIME in m.injected:
            assert fed is None
        elif checked.violations:  # invalid: fed to velocity and geo, its amount untrusted
            tx = checked.transaction
            assert fed is not None and tx is not None
            assert (fed.transaction_id, fed.customer_id, fed.timestamp_ms, fed.amount, fed.lat, fed.lng) == (
                tx.transaction_id, tx.customer_id, tx.timestamp_ms, None, tx.lat, tx.lng,
            )  # fmt: skip
            seen.update(m.injected)
        else:
            assert fed is checked.transaction
            seen.update(m.injected)
            plain = decode_plain(m.value, m.timestamp_ms)
            if plain is not None:
                assert tuple(plain_input(plain) or ()) == (
                    fed.transaction_id, fed.customer_id, fed.timestamp_ms, fed.amount, fed.lat, fed.lng,
                )  # fmt: skip
    assert seen == {ERR_AMOUNT, ERR_DEVICE}
    assert detector_input(check(b"not json", T0)) is None


def test_an_invalid_transaction_neither_raises_nor_feeds_the_amount_rule() -> None:
    detector = FraudDetector()
    base = {"customer_id": "c", "merchant_id": "m", "merchant_category": "retail", "payment_method": "pos",
            "status": "approved", "commission_type": "flat", "customer_type": "individual", "risk_level": 1,
            "vat_amount": 0, "commission_amount": 0}  # fmt: skip

    def event(i: int, amount: int, total: int) -> bytes:
        ts = T0 + i * 60_000
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1000)) + f".{ts % 1000:03d}Z"
        return orjson.dumps(
            {**base, "transaction_id": f"t{i}", "timestamp": iso, "amount": amount, "total_amount": total}
        )

    for i in range(5):
        checked = check(event(i, 100, 100), T0 + i * 60_000)
        assert checked.valid
        assert detector.observe(detector_input(checked)) == []
    # A huge invalid amount (broken total) raises nothing and does not join the average...
    poisoned = check(event(5, 9 * 10**18, 1), T0 + 300_000)
    assert poisoned.codes == (ERR_AMOUNT,)
    assert [a.rule for a in detector.observe(detector_input(poisoned))] == []
    # ...so a valid spike after it is still caught.
    spike = check(event(6, 5000, 5000), T0 + 360_000)
    assert [a.rule for a in detector.observe(detector_input(spike))] == [FRAUD_AMOUNT]


# --- replay of a seeded Pulse stream --------------------------------------------------------------


def pulse(env: dict[str, str], count: int, days: float) -> list[Message]:
    """History messages of a seeded Pulse run (pure functions, no Kafka)."""
    settings = Settings.from_env({"SEED": "7", **env})
    streams = Streams.from_seed(settings.seed)
    population = Population.build(settings.merchant_count, settings.customer_count, streams.population)
    factory = make_factory(settings, population, streams.history)
    profile = Profile(settings.event_rate, settings.peak_factor)
    return [m for batch in history(factory, profile, count, NOW - days * DAY, NOW) for m in batch]


@pytest.fixture(scope="module")
def pulse_mixed() -> list[Message]:
    """20,000 events with 3% injected errors and default fraud."""
    return pulse({"INVALID_RATE": "0.03"}, 20_000, 7)


def replay(messages: list[Message]) -> tuple[list[Alert], dict[str, FraudLabel]]:
    """Run one detector over the messages as the worker would; return alerts and the label of each fraud tx."""
    detector = FraudDetector()
    alerts: list[Alert] = []
    labels: dict[str, FraudLabel] = {}
    for m in messages:
        plain = decode_plain(m.value, m.timestamp_ms)  # the worker's fast path, then the full check
        transaction: TransactionLike | None = (
            plain_input(plain) if plain is not None else detector_input(check(m.value, m.timestamp_ms))
        )
        if transaction is None:
            continue
        if m.fraud is not None:
            assert transaction.transaction_id is not None
            labels[transaction.transaction_id] = m.fraud
        alerts.extend(detector.observe_plain(plain) if plain is not None else detector.observe(transaction))
    return alerts, labels


@pytest.mark.parametrize(
    ("env", "count", "days"),
    [
        ({"FRAUD_RATE": "0.05"}, 40_000, 7.0),  # the default history density: 4 events/min
        ({"FRAUD_RATE": "0.05", "CUSTOMER_COUNT": "1000"}, 60_000, 1 / 24),  # 1000 events/min
        ({"FRAUD_RATE": "0.05", "CUSTOMER_COUNT": "100", "INVALID_RATE": "0.1"}, 20_000, 1.0),
    ],
    ids=["default", "dense", "few-customers"],
)
def test_replay_finds_every_injected_pattern_and_nothing_else(env: dict[str, str], count: int, days: float) -> None:
    alerts, labels = replay(pulse(env, count, days))
    patterns = set(labels.values())
    by_rule = defaultdict(set)
    for label in patterns:
        by_rule[label.rule].add(label)
    assert all(len(by_rule[rule]) > 50 for rule in FRAUD_RULES), {r: len(p) for r, p in by_rule.items()}
    found: set[FraudLabel] = set()
    for alert in alerts:
        hits = {labels[t] for t in alert.transaction_ids if t in labels and labels[t].rule == alert.rule}
        assert hits, f"{alert} names no injected {alert.rule} transaction"
        found |= hits
    assert found == patterns  # recall 100% for each kind
    assert len(alerts) == len(patterns)  # and one alert per pattern: one per burst, far leg, spike


@pytest.mark.parametrize(("count", "days"), [(40_000, 7.0), (60_000, 1 / 24)], ids=["default", "dense"])
def test_replay_without_fraud_raises_no_alert(count: int, days: float) -> None:
    alerts, labels = replay(pulse({"FRAUD_RATE": "0", "CUSTOMER_COUNT": "1000"}, count, days))
    assert labels == {}
    assert alerts == []  # no velocity or geo (organic traffic stays below them), no amount (capped)


def test_a_deepcopy_is_a_snapshot_to_rewind_to(pulse_mixed: list[Message]) -> None:
    """What an exactly-once worker needs on an aborted transaction: state as of the last commit."""
    txs = [t for m in pulse_mixed if (t := detector_input(check(m.value, m.timestamp_ms))) is not None]
    detector = FraudDetector()
    for t in txs[:10_000]:
        detector.observe(t)
    snapshot = copy.deepcopy(detector)
    ahead = [a for t in txs[10_000:] for a in detector.observe(t)]
    again = [a for t in txs[10_000:] for a in snapshot.observe(t)]
    assert ahead and ahead == again


def test_replay_is_deterministic(pulse_mixed: list[Message]) -> None:
    first, _ = replay(pulse_mixed)
    second, _ = replay(pulse_mixed)
    assert first
    assert [a.to_json() for a in first] == [a.to_json() for a in second]
