"""Unit tests of the Pulse generator's pure parts: profile, population, events, injection, CLI errors."""

from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest

from dashboard.core.schema import (
    ERR_DEVICE,
    ERR_TIME,
    FRAUD_GEO,
    FRAUD_HEADER,
    FRAUD_PATTERN_HEADER,
    INJECTED_HEADER,
    MERCHANT_CATEGORIES,
)
from dashboard.core.settings import Settings
from dashboard.core.validation import check, parse_timestamp
from dashboard.pulse.batch import Message, iso_utc, iso_utc_many
from dashboard.pulse.events import Streams, history, make_factory
from dashboard.pulse.inject_invalid import INJECTED_CODES
from dashboard.pulse.model import (
    AMOUNT_LOGNORMAL,
    CATEGORY_WEIGHTS,
    DEVICE_LIBRARY,
    PAYMENT_WEIGHTS,
    TEHRAN,
    Population,
    category_quota,
)
from dashboard.pulse.producer import Counts, producer_config
from dashboard.pulse.profile import Profile, hour_of_week, weekly_weights
from dashboard.pulse.runner import Options, stream_live
from tests.pulse_fakes import FakeProducer

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 4, 26, 12, 19, 10, 304293, tzinfo=UTC).timestamp()
DAY = 86_400.0
HOUR = 3600.0
# Tuesday 2025-04-22 00:00 Tehran local time (UTC+03:30), as epoch seconds.
TUESDAY = datetime(2025, 4, 21, 20, 30, tzinfo=UTC).timestamp()


def tehran(day_offset: int, hour: float) -> float:
    """Epoch seconds of `hour` o'clock Tehran time, `day_offset` days after Tuesday 2025-04-22."""
    return TUESDAY + day_offset * DAY + hour * HOUR


def generate(env: dict[str, str], count: int, start: float = NOW - 7 * DAY, end: float = NOW) -> list[Message]:
    """History messages of a seeded run with settings `env`, as the runner would produce them."""
    settings = Settings.from_env({"SEED": "42", **env})
    streams = Streams.from_seed(settings.seed)
    population = Population.build(settings.merchant_count, settings.customer_count, streams.population)
    factory = make_factory(settings, population, streams.history)
    profile = Profile(settings.event_rate, settings.peak_factor)
    return [m for batch in history(factory, profile, count, start, end) for m in batch]


@pytest.fixture(scope="module")
def clean_messages() -> list[Message]:
    """60,000 messages without injected errors, 500 merchants (2% of them in injected fraud patterns)."""
    return generate({"INVALID_RATE": "0", "MERCHANT_COUNT": "500"}, 60_000)


@pytest.fixture(scope="module")
def clean(clean_messages: list[Message]) -> list[dict]:
    """The events of `clean_messages`, decoded."""
    return [orjson.loads(m.value) for m in clean_messages]


@pytest.fixture(scope="module")
def mixed() -> list[Message]:
    """40,000 messages with 3% injected errors."""
    return generate({"INVALID_RATE": "0.03"}, 40_000)


# --- rate profile -------------------------------------------------------------------------------


@pytest.mark.parametrize("peak", [1.0, 2.5, 5.0])
def test_mean_rate_over_a_week_is_event_rate(peak: float) -> None:
    profile = Profile(250.0, peak)
    minutes = np.arange(NOW, NOW + 7 * DAY, 60.0)
    assert profile.rates(minutes).mean() == pytest.approx(250.0, rel=0.01)
    assert profile.expected_count(NOW, NOW + 7 * DAY) == pytest.approx(250.0 * 7 * 24 * 60, rel=1e-9)
    assert weekly_weights(peak).mean() == pytest.approx(1.0)


@pytest.mark.parametrize("peak", [1.0, 2.5, 5.0])
def test_peak_factor_is_the_ratio_of_peak_to_evening(peak: float) -> None:
    profile = Profile(100.0, peak)
    for day in range(7):
        assert profile.rate(tehran(day, 12.5)) / profile.rate(tehran(day, 19.5)) == pytest.approx(peak)


def test_peak_factor_raises_the_peak_to_trough_ratio_proportionally() -> None:
    def ratio(peak: float) -> float:
        weights = weekly_weights(peak)
        return float(weights.max() / weights.min())

    assert ratio(5.0) / ratio(1.0) == pytest.approx(5.0)
    assert ratio(2.5) > 10  # a real night trough, not a flat line


def test_daily_pattern_in_tehran_local_time() -> None:
    profile = Profile(100.0, 2.5)
    night, morning, peak, evening = (profile.rate(tehran(0, h)) for h in (3.5, 8.5, 12.0, 19.0))
    assert night < morning < evening < peak
    # 09:00 Tehran is 05:30 UTC: the peak starts there, not at 09:00 UTC.
    assert profile.rate(tehran(0, 9.0)) == pytest.approx(peak)
    assert profile.rate(tehran(0, 9.0) - 1) < peak
    assert profile.rate(tehran(0, 18.0) - 1) == pytest.approx(peak)
    assert profile.rate(tehran(0, 18.0)) < peak


def test_weekly_pattern_friday_quietest() -> None:
    profile = Profile(100.0, 2.5)
    # Tuesday + 3 = Friday, + 2 = Thursday, - 3 = Saturday.
    saturday, tuesday, thursday, friday = (profile.rate(tehran(d, 12.0)) for d in (-3, 0, 2, 3))
    assert saturday == tuesday
    assert friday < thursday < tuesday
    assert int(hour_of_week(tehran(-3, 0.0))) == 0  # the Iranian week starts on Saturday


def test_sampled_times_follow_the_profile() -> None:
    profile = Profile(100.0, 2.5)
    rng = np.random.default_rng(1)
    start = tehran(0, 0.25)
    times = profile.sample_times(300_000, start, start + 7 * DAY, rng)
    assert np.all(np.diff(times) >= 0)
    assert times[0] >= start and times[-1] < start + 7 * DAY
    observed = np.bincount(hour_of_week(times), minlength=168) / len(times)
    expected = profile.per_second / profile.per_second.sum()
    assert np.abs(observed - expected).max() < 0.0015


def test_live_arrivals_are_poisson_with_the_profile_rate() -> None:
    profile = Profile(10.0, 4.0)
    rng = np.random.default_rng(2)
    start = tehran(0, 0.0)
    times = profile.arrivals(start, 40_000, rng, multiplier=1.5)
    assert np.all(np.diff(times) > 0)
    assert times[-1] > start + DAY
    in_day = times[times < start + DAY]
    expected = 1.5 * profile.expected_count(start, start + DAY)
    assert abs(len(in_day) - expected) < 4 * math.sqrt(expected)
    hours = np.floor((in_day - start) / HOUR)
    peak = np.count_nonzero((hours >= 9) & (hours < 18)) / 9
    evening = np.count_nonzero((hours >= 18) & (hours < 21)) / 3
    assert peak / evening == pytest.approx(4.0, rel=0.15)
    gaps = np.diff(times[(times > tehran(0, 10)) & (times < tehran(0, 17))])
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.1)  # exponential gaps


# --- population -----------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [10, 21, 50, 137, 500])
def test_merchant_categories_follow_the_weights(count: int) -> None:
    counts = np.bincount(category_quota(count), minlength=5)
    weights = np.array([CATEGORY_WEIGHTS[c] for c in MERCHANT_CATEGORIES])
    exact = weights / weights.sum() * count
    assert counts.sum() == count
    assert counts.min() >= 1
    assert np.all(np.abs(counts - exact) < np.where(exact >= 1, 1.0, 1.5))


def test_each_merchant_has_one_category_home_and_commission_type(
    clean: list[dict], clean_messages: list[Message]
) -> None:
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    spots: dict[str, list[tuple[float, float]]] = defaultdict(list)
    types: dict[str, set[str]] = defaultdict(set)
    for e, m in zip(clean, clean_messages, strict=True):
        seen[e["merchant_id"]].add((e["merchant_category"], e["commission_type"]))
        if m.fraud is None or m.fraud.rule != FRAUD_GEO:  # a geo pair's far leg is paid from another city
            spots[e["merchant_id"]].append((e["location"]["lat"], e["location"]["lng"]))
        types[e["customer_id"]].add(e["customer_type"])
    assert len(seen) == 500
    assert all(len(v) == 1 for v in seen.values())
    assert all(len(v) == 1 for v in types.values())
    for points in spots.values():
        lat, lng = np.array(points).T
        assert lat.max() - lat.min() <= 0.01 and lng.max() - lng.min() <= 0.01
        assert abs(lat.mean() - TEHRAN[0]) < 0.105 and abs(lng.mean() - TEHRAN[1]) < 0.105
    shares = Counter(c for ((c, _),) in seen.values())
    total = sum(CATEGORY_WEIGHTS.values())
    for category, weight in CATEGORY_WEIGHTS.items():
        assert shares[category] / 500 == pytest.approx(weight / total, abs=0.003)


def test_population_does_not_depend_on_history_size() -> None:
    a = Population.build(50, 1000, Streams.from_seed(7).population)
    b = Population.build(50, 1000, Streams.from_seed(7).population)
    assert [a.merchant(i) for i in range(50)] == [b.merchant(i) for i in range(50)]
    assert np.array_equal(a.customer_type, b.customer_type)


# --- clean events: the original's distributions --------------------------------------------------


def test_payment_method_shares(clean: list[dict]) -> None:
    shares = Counter(e["payment_method"] for e in clean)
    for method, weight in PAYMENT_WEIGHTS.items():
        assert shares[method] / len(clean) == pytest.approx(weight, abs=0.01)


def test_amounts_are_lognormal_by_category(clean: list[dict]) -> None:
    by_category: dict[str, list[int]] = defaultdict(list)
    for e in clean:
        by_category[e["merchant_category"]].append(e["amount"])
    for category, (mu, sigma) in AMOUNT_LOGNORMAL.items():
        logs = np.log(np.array(by_category[category]))
        assert np.median(logs) == pytest.approx(mu, abs=0.06), category
        assert logs.std() == pytest.approx(sigma, rel=0.06), category


def test_commission_vat_and_total_arithmetic(clean: list[dict]) -> None:
    for e in clean:
        assert all(isinstance(e[k], int) for k in ("amount", "commission_amount", "vat_amount", "total_amount"))
        assert e["commission_amount"] == int(e["amount"] * 0.02)
        assert e["vat_amount"] == int(e["amount"] * 0.09)
        assert e["total_amount"] == e["amount"] + e["vat_amount"] + e["commission_amount"]


def test_status_failure_reason_risk_and_devices(clean: list[dict]) -> None:
    n = len(clean)
    status = Counter(e["status"] for e in clean)
    assert status["declined"] / n == pytest.approx(0.05, abs=0.005)
    assert 0 < status["pending"] / n < 0.02
    assert all((e["failure_reason"] is None) == (e["status"] != "declined") for e in clean)
    assert len({e["failure_reason"] for e in clean}) == 5  # four reasons and None
    risk = Counter(e["risk_level"] for e in clean)
    assert set(risk) == {1, 2, 3, 5}
    assert risk[5] / n == pytest.approx(0.02, abs=0.003)
    for e in clean:
        if e["payment_method"] in ("online", "mobile"):
            assert e["device_info"] in DEVICE_LIBRARY
        else:
            assert e["device_info"] == {}


def test_ids_keys_and_field_order() -> None:
    messages = generate({}, 2000)
    first = orjson.loads(messages[0].value)
    assert list(first) == [
        "transaction_id", "timestamp", "customer_id", "merchant_id", "merchant_category", "payment_method",
        "amount", "location", "device_info", "status", "commission_type", "commission_amount", "vat_amount",
        "total_amount", "customer_type", "risk_level", "failure_reason",
    ]  # fmt: skip
    ids = [orjson.loads(m.value)["transaction_id"] for m in messages]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    assert all(m.key == orjson.loads(m.value)["customer_id"].encode() for m in messages)


def test_timestamps_iso_utc_with_z_and_no_zero_fraction() -> None:
    assert iso_utc(1_745_669_950_304_293) == "2025-04-26T12:19:10.304293Z"
    assert iso_utc(1_745_669_950_000_000) == "2025-04-26T12:19:10Z"
    assert iso_utc(1_745_669_950_000_100) == "2025-04-26T12:19:10.000100Z"
    us = np.random.default_rng(3).integers(1_700_000_000_000_000, 1_800_000_000_000_000, 5000)
    us[::7] -= us[::7] % 1_000_000
    assert iso_utc_many(us) == [iso_utc(int(u)) for u in us]


# --- reproducibility, injection, history ---------------------------------------------------------


def test_same_seed_same_events_other_seed_different() -> None:
    a = generate({"SEED": "5", "INVALID_RATE": "0.1"}, 3000)
    b = generate({"SEED": "5", "INVALID_RATE": "0.1"}, 3000)
    c = generate({"SEED": "6", "INVALID_RATE": "0.1"}, 3000)
    assert a == b
    assert [m.value for m in a] != [m.value for m in c]


def test_injected_share_split_evenly_over_the_three_rules(mixed: list[Message]) -> None:
    injected = [m for m in mixed if m.injected]
    assert len(injected) / len(mixed) == pytest.approx(0.03, rel=0.1)
    by_code = Counter(code for m in injected for code in m.injected)
    assert set(by_code) == set(INJECTED_CODES)
    for code in INJECTED_CODES:
        assert by_code[code] / len(injected) == pytest.approx(1 / 3, abs=0.05)


def test_validation_finds_exactly_the_injected_codes(mixed: list[Message]) -> None:
    for m in mixed:
        assert check(m.value, m.timestamp_ms).codes == m.injected, m.value
        expected = [(INJECTED_HEADER, ",".join(m.injected).encode())] if m.injected else []
        if m.fraud is not None:
            expected += [(FRAUD_HEADER, m.fraud.rule.encode()), (FRAUD_PATTERN_HEADER, str(m.fraud.pattern).encode())]
        assert m.headers() == (expected or None)


def test_injected_breaks_are_clear_cut(mixed: list[Message]) -> None:
    for m in mixed:
        event = orjson.loads(m.value)
        if ERR_TIME in m.injected:
            stamp = parse_timestamp(event["timestamp"])
            assert stamp is not None
            delta_h = (stamp - m.timestamp_ms) / 3_600_000
            assert delta_h > 1 or delta_h < -25
        if ERR_DEVICE in m.injected:
            assert event["payment_method"] == "mobile"
            assert event["device_info"].get("os") not in ("iOS", "Android")


@pytest.mark.parametrize(("rate", "share"), [("0", 0.0), ("1", 1.0)])
def test_invalid_rate_extremes(rate: str, share: float) -> None:
    messages = generate({"INVALID_RATE": rate}, 1000)
    assert sum(bool(m.injected) for m in messages) == share * 1000
    assert all(check(m.value, m.timestamp_ms).codes == m.injected for m in messages)


def test_history_in_time_order_spanning_the_days(mixed: list[Message]) -> None:
    stamps = np.array([m.timestamp_ms for m in mixed])
    assert len(mixed) == 40_000
    assert np.all(np.diff(stamps) >= 0)
    assert stamps[0] >= (NOW - 7 * DAY) * 1000 and stamps[-1] <= NOW * 1000
    assert stamps[-1] - stamps[0] > 0.97 * 7 * DAY * 1000
    for m in mixed:
        if ERR_TIME not in m.injected:
            event_us = round((datetime.fromisoformat(orjson.loads(m.value)["timestamp"]).timestamp()) * 1e6)
            assert abs(event_us // 1000 - m.timestamp_ms) <= 1  # Kafka timestamp is the event time


# --- live loop with a fake producer and clock ----------------------------------------------------


def test_live_stream_sends_max_events_stamped_at_their_arrival() -> None:
    settings = Settings.from_env({"SEED": "9", "INVALID_RATE": "0.05"})
    streams = Streams.from_seed(settings.seed)
    factory = make_factory(settings, Population.build(50, 1000, streams.population), streams.live)
    fake = FakeProducer(NOW)
    options = Options(max_events=700, rate_multiplier=10.0)
    sent = stream_live(fake, factory, Profile(100.0, 2.5), options, fake.clock)  # type: ignore[arg-type]
    assert sent == len(fake.sent) == 700
    stamps = [m.timestamp_ms for m in fake.sent]
    assert stamps == sorted(stamps) and stamps[0] >= NOW * 1000
    assert fake.now * 1000 == pytest.approx(stamps[-1], abs=1)
    for m in fake.sent:
        assert check(m.value, m.timestamp_ms).codes == m.injected


def test_counts_summary_line() -> None:
    counts = Counts(history=10, live=5, delivered=15, injected=Counter({"ERR_TIME": 2, "ERR_AMOUNT": 1}))
    assert counts.summary() == (
        "produced 15 (history 10, live 5), delivered 15, failed 0, undelivered 0, injected 3 (ERR_AMOUNT 1, ERR_TIME 2)"
    )


# --- command line ---------------------------------------------------------------------------------


def pulse_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def test_out_of_range_setting_is_one_line_and_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dashboard.pulse"],
        check=False,
        env=pulse_env(EVENT_RATE="5000"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == "pulse: EVENT_RATE='5000' is out of range 10-1000\n"


def test_unreachable_broker_warns_and_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard.pulse", "--no-history"],
        env=pulse_env(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"),
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stderr is not None

    def read() -> None:
        for line in proc.stderr or ():
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + 30
    try:
        while not any("no broker at 127.0.0.1:1, retrying" in line for line in seen):
            assert time.monotonic() < deadline, f"no warning line in {seen}"
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.5))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    while not lines.empty():
        seen.append(lines.get())
    text = "".join(seen)
    assert "Traceback" not in text
    assert "pulse: produced 0 (history 0, live 0)" in text


def test_producer_keeps_acks_all_and_idempotence_whatever_the_environment_says() -> None:
    settings = Settings.from_env({"KAFKA_ACKS": "1", "KAFKA_ENABLE_IDEMPOTENCE": "false", "KAFKA_LINGER_MS": "50"})
    config = producer_config(settings)
    assert (config["acks"], config["enable.idempotence"]) == ("all", True)
    assert config["linger.ms"] == "50"  # other passthrough settings still win over our defaults
