"""Unit tests of the generator's fraud stage: shares, pattern shapes, labels, validity, clean organic traffic."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from dashboard.core.schema import (
    ERR_TIME,
    FRAUD_AMOUNT,
    FRAUD_GEO,
    FRAUD_HEADER,
    FRAUD_PATTERN_HEADER,
    FRAUD_RULES,
    FRAUD_VELOCITY,
)
from dashboard.core.settings import Settings
from dashboard.core.validation import check, parse_timestamp
from dashboard.pulse.batch import FraudLabel, Message
from dashboard.pulse.events import Streams, history, make_factory
from dashboard.pulse.inject_fraud import CITIES, FraudInjector
from dashboard.pulse.model import DEVICE_LIBRARY, TEHRAN, Population
from dashboard.pulse.producer import Counts
from dashboard.pulse.profile import Profile
from dashboard.pulse.runner import LIVE_CHUNK, Options, stream_live
from tests.pulse_fakes import FakeProducer

NOW = datetime(2025, 4, 26, 12, 19, 10, 304293, tzinfo=UTC).timestamp()
DAY = 86_400.0


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance in km, written out here independently of dashboard.fraud."""
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def generate(env: dict[str, str], count: int, days: float = 7.0) -> tuple[list[Message], FraudInjector]:
    """History messages of a seeded run, and its fraud injector."""
    settings = Settings.from_env({"SEED": "21", **env})
    streams = Streams.from_seed(settings.seed)
    population = Population.build(settings.merchant_count, settings.customer_count, streams.population)
    injector = FraudInjector(population, settings.fraud_rate)
    factory = make_factory(settings, population, streams.history, injector)
    profile = Profile(settings.event_rate, settings.peak_factor)
    return [m for batch in history(factory, profile, count, NOW - days * DAY, NOW) for m in batch], injector


class Event:
    """A message with its decoded value and event time."""

    def __init__(self, message: Message) -> None:
        self.message = message
        self.value: dict[str, Any] = orjson.loads(message.value)
        stamp = parse_timestamp(self.value["timestamp"])
        assert stamp is not None
        self.ms = stamp
        self.point = (self.value["location"]["lat"], self.value["location"]["lng"])
        self.visible = ERR_TIME not in message.injected  # what the detectors see
        self.valid = not message.injected  # what the amount rule sees

    @property
    def label(self) -> FraudLabel | None:
        return self.message.fraud


@pytest.fixture(scope="module")
def run() -> list[Event]:
    """50,000 events over 7 days, 5% in fraud patterns, 2% injected errors."""
    messages, _ = generate({"FRAUD_RATE": "0.05", "INVALID_RATE": "0.02"}, 50_000)
    return [Event(m) for m in messages]


@pytest.fixture(scope="module")
def dense() -> list[Event]:
    """30,000 events in 20 minutes (1500 events/min, 1000 customers: 60% of what they can do without velocity)."""
    messages, _ = generate({"FRAUD_RATE": "0.05", "INVALID_RATE": "0.02"}, 30_000, days=20 / 1440)
    return [Event(m) for m in messages]


def by_pattern(events: list[Event]) -> dict[FraudLabel, list[Event]]:
    groups: dict[FraudLabel, list[Event]] = defaultdict(list)
    for e in events:
        if e.label is not None:
            groups[e.label].append(e)
    return groups


# --- shares and labels ----------------------------------------------------------------------------


def test_fraud_rate_is_the_share_of_events_in_patterns(run: list[Event]) -> None:
    fraud = [e for e in run if e.label is not None]
    assert len(fraud) / len(run) == pytest.approx(0.05, abs=0.001)
    patterns = Counter(label.rule for label in by_pattern(run))
    assert set(patterns) == set(FRAUD_RULES)
    for rule in FRAUD_RULES:
        assert patterns[rule] / patterns.total() == pytest.approx(1 / 3, abs=0.05), patterns
    events = Counter(e.label.rule for e in fraud if e.label is not None)
    assert events[FRAUD_VELOCITY] / len(fraud) == pytest.approx(0.7, abs=0.05)
    assert events[FRAUD_AMOUNT] / len(fraud) == pytest.approx(0.1, abs=0.03)


def test_fraud_events_are_valid_risk_5_and_labelled_in_headers(run: list[Event]) -> None:
    for e in run:
        m = e.message
        assert check(m.value, m.timestamp_ms).codes == m.injected
        headers = dict(m.headers() or [])
        if e.label is None:
            assert e.value["risk_level"] in (1, 2, 3)
            assert FRAUD_HEADER not in headers
        else:
            assert m.injected == ()  # fraud, not a schema error
            assert e.value["risk_level"] == 5
            assert headers == {FRAUD_HEADER: e.label.rule.encode(), FRAUD_PATTERN_HEADER: str(e.label.pattern).encode()}


def test_stream_stays_in_time_order_with_kafka_time_equal_to_event_time(run: list[Event]) -> None:
    stamps = [e.message.timestamp_ms for e in run]
    assert stamps == sorted(stamps)
    for e in run:
        if e.visible:
            assert abs(e.ms - e.message.timestamp_ms) <= 1


# --- pattern shapes -------------------------------------------------------------------------------


def test_bursts_are_6_to_8_payments_of_one_customer_within_2_minutes(run: list[Event]) -> None:
    bursts = [g for label, g in by_pattern(run).items() if label.rule == FRAUD_VELOCITY]
    assert {len(g) for g in bursts} == {6, 7, 8}
    for g in bursts:
        assert len({e.value["customer_id"] for e in g}) == 1
        assert max(e.ms for e in g) - min(e.ms for e in g) < 120_000
        assert all(km(e.point, TEHRAN) < 20 for e in g)


def test_geo_pairs_are_tehran_then_another_city_1_to_4_minutes_later(run: list[Event]) -> None:
    pairs = [g for label, g in by_pattern(run).items() if label.rule == FRAUD_GEO]
    assert len(pairs) > 100
    cities = Counter()
    for first, second in pairs:
        assert first.value["customer_id"] == second.value["customer_id"]
        assert 60_000 <= second.ms - first.ms <= 240_000
        assert km(first.point, TEHRAN) < 20
        (city,) = [name for name, point in CITIES.items() if km(second.point, point) < 1.0]
        cities[city] += 1
        assert second.value["payment_method"] == "online"
        assert second.value["device_info"] in DEVICE_LIBRARY
    assert set(cities) == set(CITIES)


def test_spikes_are_20_to_50_times_the_customers_average_after_5_transactions(run: list[Event]) -> None:
    count: Counter[str] = Counter()
    total: Counter[str] = Counter()
    spikes = 0
    for e in run:
        if not e.valid:
            continue
        customer, amount = e.value["customer_id"], e.value["amount"]
        if e.label is not None and e.label.rule == FRAUD_AMOUNT:
            spikes += 1
            assert count[customer] >= 5
            ratio = amount * count[customer] / total[customer]
            assert 20 <= ratio <= 50.01
        count[customer] += 1
        total[customer] += amount
    assert spikes > 100


# --- organic traffic is clean ---------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["run", "dense"])
def test_organic_traffic_stays_below_every_rule(stream: str, request: pytest.FixtureRequest) -> None:
    """Every 6 visible events of a customer within 2 minutes include a burst event; every far pair within
    5 minutes includes a geo event; no ordinary amount exceeds 10x the customer's earlier average.

    (Without the generator's redraws and reservations the dense stream breaks the first two, without
    its cap either stream breaks the third.)
    """
    run: list[Event] = request.getfixturevalue(stream)
    per_customer: dict[str, list[Event]] = defaultdict(list)
    count: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for e in run:
        if not e.visible:
            continue
        customer, amount = e.value["customer_id"], e.value["amount"]
        per_customer[customer].append(e)
        if not e.valid:
            continue  # an invalid amount neither raises nor feeds the amount rule
        if e.label is None and count[customer] >= 5:
            assert amount * count[customer] <= 10 * total[customer]
        count[customer] += 1
        total[customer] += amount

    def rules(events: list[Event]) -> set[str]:
        return {e.label.rule for e in events if e.label is not None}

    for events in per_customer.values():
        for i in range(len(events) - 5):
            if events[i + 5].ms - events[i].ms < 120_000:
                assert FRAUD_VELOCITY in rules(events[i : i + 6])
        for i, a in enumerate(events):
            for b in events[i + 1 :]:
                if b.ms - a.ms >= 300_000:
                    break
                if km(a.point, b.point) > 50:
                    assert FRAUD_GEO in rules([a, b])


@pytest.mark.parametrize(
    ("customers", "minutes", "overflow"),
    [("1000", 20, False), ("100", 2, True)],
    ids=["85%-of-capacity", "850%-of-capacity"],
)
def test_overflow_only_beyond_what_the_customers_can_do(customers: str, minutes: int, overflow: bool) -> None:
    """2130 events/min: 1000 customers can take them without 6 in 2 minutes (2500/min); 100 cannot."""
    _, injector = generate({"CUSTOMER_COUNT": customers, "FRAUD_RATE": "0.02"}, 2130 * minutes, days=minutes / 1440)
    assert (injector.overflow > 0) is overflow
    assert injector.dropped == 0


# --- rates at their extremes, reproducibility -----------------------------------------------------


def test_no_fraud_rate_no_fraud_and_no_risk_5() -> None:
    messages, _ = generate({"FRAUD_RATE": "0"}, 5000)
    assert all(m.fraud is None and orjson.loads(m.value)["risk_level"] != 5 for m in messages)


def test_every_event_invalid_leaves_none_for_fraud() -> None:
    """Fraud events must be valid; at INVALID_RATE 1 every event is broken, so none is fraud."""
    messages, injector = generate({"FRAUD_RATE": "0.1", "INVALID_RATE": "1"}, 5000)
    assert all(m.injected and m.fraud is None for m in messages)
    assert injector.labelled.total() == 0


def test_same_seed_same_patterns() -> None:
    a, _ = generate({"FRAUD_RATE": "0.05"}, 5000)
    b, _ = generate({"FRAUD_RATE": "0.05"}, 5000)
    assert a == b
    assert sum(m.fraud is not None for m in a) > 100


def test_injector_rejects_a_rate_outside_0_to_1() -> None:
    population = Population.build(10, 100, Streams.from_seed(1).population)
    with pytest.raises(ValueError, match="fraud rate"):
        FraudInjector(population, 1.5)


# --- live after history ---------------------------------------------------------------------------


def test_live_continues_the_history_ground_truth_across_short_chunks() -> None:
    """At 1000 events/min a live chunk spans seconds: patterns span chunks (pending events) and the seam."""
    settings = Settings.from_env({"SEED": "5", "EVENT_RATE": "1000", "FRAUD_RATE": "0.05"})
    streams = Streams.from_seed(settings.seed)
    population = Population.build(settings.merchant_count, settings.customer_count, streams.population)
    injector = FraudInjector(population, settings.fraud_rate)
    profile = Profile(settings.event_rate, settings.peak_factor)
    factory = make_factory(settings, population, streams.history, injector)
    past = [m for batch in history(factory, profile, 3000, NOW - 3600, NOW) for m in batch]
    fake = FakeProducer(NOW)
    live_factory = make_factory(settings, population, streams.live, injector)
    assert stream_live(fake, live_factory, profile, Options(max_events=6000), fake.clock) == 6000  # type: ignore[arg-type]

    messages = past + fake.sent
    stamps = [m.timestamp_ms for m in messages]
    assert stamps == sorted(stamps)
    assert fake.now * 1000 == pytest.approx(stamps[-1], abs=1)
    groups: dict[FraudLabel, list[Message]] = defaultdict(list)
    for m in messages:
        if m.fraud is not None:
            groups[m.fraud].append(m)
            assert check(m.value, m.timestamp_ms).valid
    unfinished = {slot.label for slot in injector.pending}
    sizes = {label: len(g) for label, g in groups.items() if label not in unfinished}
    assert all(6 <= n <= 8 for label, n in sizes.items() if label.rule == FRAUD_VELOCITY)
    assert all(n == 2 for label, n in sizes.items() if label.rule == FRAUD_GEO)
    assert all(n == 1 for label, n in sizes.items() if label.rule == FRAUD_AMOUNT)
    ids = [label.pattern for label in groups]
    assert len(ids) == len(set(ids)) > 100  # one id space for the whole run
    chunk = {id(m): i // LIVE_CHUNK for i, m in enumerate(fake.sent)}  # each chunk sends LIVE_CHUNK events
    across = [label for label, g in groups.items() if len({chunk.get(id(m), -1) for m in g}) > 1]
    assert len(across) > 10  # history -> live, or chunk -> chunk, with every part at its exact time


def test_counts_summary_names_fraud_events_by_rule() -> None:
    counts = Counts(history=10, live=5, delivered=15, fraud=Counter({FRAUD_VELOCITY: 6, FRAUD_GEO: 2, FRAUD_AMOUNT: 1}))
    assert counts.summary() == (
        "produced 15 (history 10, live 5), delivered 15, failed 0, undelivered 0, injected 0 (none), "
        "fraud events 9 (amount_anomaly 1, geo_impossible 2, velocity 6)"
    )
