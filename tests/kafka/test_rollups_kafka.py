"""Per-minute aggregates through the real broker: 7 days of history, kill -9 mid-stream, restarts of the dashboard.

The worker writes darooghe.rollups; the dashboard's history feed (`RollupFeed`,
the class the app runs) reads it into `Rollups`, and the Volume page's views
(`history.select`, `volume.hourly`, `history.describe`) are checked over it,
not through the browser (a browser run adds a minute for no extra coverage of
the aggregates: the page only renders these frames).
"""

from __future__ import annotations

import collections
import os
import random
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from dashboard.core.settings import Settings
from dashboard.feed.rollups import RollupFeed
from dashboard.store.rollups import Rollups
from dashboard.views import history, volume
from dashboard.views.filters import Filters
from tests.kafka.kafkatools import committed_total, create_topic, pipeline, produce, read_all, run_module, start_module

pytestmark = pytest.mark.kafka

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
CATEGORIES = ("retail", "food_service", "entertainment", "transportation", "government")
STATUSES = ("approved", "approved", "declined", "pending")


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def week_of_messages(n: int, now_ms: int, seed: int) -> tuple[list[tuple[bytes, bytes, int]], list[tuple[int, bool]]]:
    """`n` transactions over the last 7 days, Kafka timestamp = event time; returns them and (hour, valid) each."""
    rng = random.Random(seed)
    times = sorted(rng.randrange(now_ms - 7 * DAY_MS, now_ms - 60_000) for _ in range(n))
    messages, truth = [], []
    for i, ts in enumerate(times):
        valid = i % 25 != 3
        amount = rng.randrange(1000, 10**7)
        ev: dict[str, Any] = {
            "transaction_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "timestamp": iso(ts),
            "customer_id": f"cust_{rng.randrange(5000)}",
            "merchant_id": f"merch_{rng.randrange(300)}",
            "merchant_category": CATEGORIES[i % 5],
            "payment_method": "pos",
            "amount": amount,
            "location": {"lat": 35.7, "lng": 51.3},
            "device_info": {},
            "status": STATUSES[i % 4],
            "commission_type": "flat",
            "commission_amount": 20,
            "vat_amount": 90,
            "total_amount": amount + 110 + (0 if valid else 1),  # invalid: ERR_AMOUNT
            "customer_type": "individual",
            "risk_level": 2,
            "failure_reason": None,
        }
        messages.append((ev["customer_id"].encode(), orjson.dumps(ev), ts))
        truth.append((ts // HOUR_MS, valid))
    return messages, truth


def load(env: dict[str, str], expected: int) -> Rollups:
    """Start the dashboard's history feed on the env's topics and wait until it has read `expected` transactions."""
    feed = RollupFeed(Settings.from_env(env), metadata_interval=1.0)
    feed.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if feed.caught_up and feed.rollups.snapshot().added >= expected:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # anything beyond `expected` (a duplicate) would show now
        return feed.rollups
    finally:
        feed.stop()


def test_week_of_history_exactly_once_through_kill_9_and_after_dashboard_restarts(
    kafka_env: dict[str, str], tmp_path: Path
) -> None:
    bootstrap, topic, group = pipeline(kafka_env)
    create_topic(bootstrap, topic)
    now_ms = int(time.time() * 1000)
    messages, truth = week_of_messages(120_000, now_ms, seed=9)
    produce(bootstrap, topic, messages)
    # A killed member holds its partitions until its session times out: 6 s (the broker's minimum), not 45.
    # Transactions of 20,000 messages at most (a backlog's default is 100,000): kills land mid-stream.
    env = dict(kafka_env, KAFKA_SESSION_TIMEOUT_MS="6000", KAFKA_HEARTBEAT_INTERVAL_MS="1000", TXN_MAX_MESSAGES="20000")

    # The worker, killed mid-stream up to three times (each kill after that incarnation's first commit).
    # On a fast machine an incarnation may finish the rest before its kill: such a kill does not count.
    txn_id = f"test-rollups-{uuid.uuid4().hex[:8]}"
    rng = random.Random(5)
    last = 0
    kills_mid_stream = 0
    for _ in range(3):
        if last >= len(messages):
            break
        worker = start_module(
            "dashboard.ingest",
            env,
            "--processes",
            "1",
            "--no-fraud",
            "--transactional-id",
            txn_id,
            log=tmp_path / "w.log",
        )
        deadline = time.monotonic() + 60
        progress = last
        while progress <= last and time.monotonic() < deadline:
            time.sleep(0.05)
            progress = committed_total(bootstrap, group, topic)
        assert progress > last, "the worker committed nothing within 60 s"
        time.sleep(rng.uniform(0.0, 0.1))
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        last = committed_total(bootstrap, group, topic)
        kills_mid_stream += last < len(messages)
    assert kills_mid_stream >= 2, f"only {kills_mid_stream} kill(s) landed before the end of the stream"
    result = run_module(
        "dashboard.ingest", env, "--processes", "1", "--no-fraud", "--until-idle", "3", "--transactional-id", txn_id
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert committed_total(bootstrap, group, topic) == len(messages)
    # A kill landed inside an open transaction (its error records were aborted): the re-read had work to redo.
    committed = read_all(bootstrap, kafka_env["ERROR_TOPIC"], idle=1.0)
    uncommitted = read_all(bootstrap, kafka_env["ERROR_TOPIC"], read_committed=False, idle=1.0)
    assert len(uncommitted) > len(committed) == sum(not v for _, v in truth)

    by_hour = collections.Counter(hour for hour, _ in truth)
    valid = sum(v for _, v in truth)
    cubes = []
    for _ in range(2):  # the dashboard, then the dashboard restarted: the same full history
        rollups = load(kafka_env, len(messages))
        snap = rollups.snapshot()
        assert snap.added == len(messages)
        assert int(snap.cube["count"].sum()) == int(snap.merchants["count"].sum()) == len(messages)
        assert int(snap.cube.loc[snap.cube["valid"], "count"].sum()) == valid
        past = history.select(snap, Filters(), now_ms)
        hourly = volume.hourly(past)
        got = {
            int(t.value // 1_000_000 // HOUR_MS): int(c)
            for t, c in zip(hourly["time"], hourly["count"], strict=True)
            if c
        }
        # Hours before the first valid transaction's are outside the chart's span; none here (the first is valid).
        assert got == dict(by_hour)
        assert f"History covers {len(messages):,} transactions since" in history.describe(snap)
        cubes.append(snap.cube)
    assert cubes[0].equals(cubes[1])
