"""A fresh start through the real broker: Pulse's flush mode, and topics recreated under running readers.

- Pulse with EVENT_INIT_MODE=flush under a running ingest worker: afterwards
  the history (rollups, read by the dashboard's history feed), the error log
  and the fraud alerts describe the regenerated stream only, counted
  independently from the new transactions topic.
- The rollups topic deleted and created again under a running history feed:
  its totals follow the new topic, and its status says it rebuilt.
- The transactions topic recreated under a running transactions feed: the
  buffer holds the new topic's rows only.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pytest

from dashboard.core.rollup import decode
from dashboard.core.schema import FRAUD_VELOCITY
from dashboard.core.settings import Settings
from dashboard.feed.alerts import AlertFeed
from dashboard.feed.rollups import RollupFeed
from dashboard.feed.transactions import Feed
from dashboard.fraud.rules import Alert
from dashboard.kafka.admin import delete_topics, ensure_topics
from dashboard.store.aggregate import MinuteAggregator
from dashboard.store.buffer import RingBuffer
from dashboard.store.rollups import FUTURE_MINUTES
from tests.feed_events import event
from tests.kafka.kafkatools import ROOT, committed_total, pipeline, produce, read_all, start_module

pytestmark = pytest.mark.kafka

DEADLINE_S = 60.0


def wait_for(what: str, ok: Callable[[], bool], deadline: float = DEADLINE_S) -> None:
    """Poll `ok` until it holds; fail with `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not ok():
        if time.monotonic() > end:
            pytest.fail(f"not within {deadline:.0f} s: {what}")
        time.sleep(0.1)


def pulse_history(env: dict[str, str], events: int, seed: int) -> str:
    """Run Pulse in flush mode, history only; return its log."""
    result = subprocess.run(
        [sys.executable, "-m", "dashboard.pulse", "--history-only"],
        # 15 minutes of history: every minute of each partition gets events in both runs, so the
        # worker's open aggregate runs of the old stream meet the new stream's minutes.
        env={
            **env,
            "HISTORY_EVENTS": str(events),
            "HISTORY_DAYS": "0.01",
            "SEED": str(seed),
            "EVENT_INIT_MODE": "flush",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


def event_minute(value: bytes | None) -> int:
    """The epoch minute of a Pulse message's event time (its `timestamp` field)."""
    stamp = orjson.loads(value or b"{}")["timestamp"]
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()) // 60


def test_flush_under_a_running_worker_leaves_only_the_new_stream_in_history_errors_and_alerts(
    kafka_env: dict[str, str], tmp_path: Path
) -> None:
    bootstrap, topic, group = pipeline(kafka_env)
    settings = Settings.from_env(kafka_env)
    pulse_history(kafka_env, 1500, seed=1)
    worker = start_module(
        "dashboard.ingest",
        kafka_env,
        "--processes",
        "1",
        "--transactional-id",
        f"t-{uuid.uuid4().hex[:8]}",
        log=tmp_path / "worker.log",
    )
    try:
        wait_for("the worker commits the first history", lambda: committed_total(bootstrap, group, topic) == 1500)
        old_errors = read_all(bootstrap, settings.error_topic, idle=1.0)
        old_alerts = read_all(bootstrap, settings.fraud_topic, idle=1.0)
        assert old_errors and old_alerts and read_all(bootstrap, settings.rollups_topic, idle=1.0)

        log = pulse_history(kafka_env, 1000, seed=2)  # the worker keeps running through the flush
        flushed = [line for line in log.splitlines() if "flush: deleted and recreated empty" in line]
        assert len(flushed) == 1, log[-2000:]
        for name in (topic, settings.error_topic, settings.fraud_topic, settings.rollups_topic):
            assert name in flushed[0]

        new = read_all(bootstrap, topic, idle=1.0)
        assert len(new) == 1000
        ids = {orjson.loads(m.value())["transaction_id"] for m in new if m.value()}
        wait_for("the worker commits the new history", lambda: committed_total(bootstrap, group, topic) == len(new))
    finally:
        worker.terminate()
        worker.wait(30)
    assert "the topic was recreated" in (tmp_path / "worker.log").read_text()

    # Every transaction of the new topic is aggregated once, and nothing of the old one: the latest
    # record of each run key (the topic is compacted) sums to the new topic's count.
    latest = {m.key(): decode(m.value()) for m in read_all(bootstrap, settings.rollups_topic, idle=1.0)}
    assert sum(int(np.frombuffer(r.counts, "<u4").sum()) for r in latest.values()) == len(new)
    # The dashboard's history feed shows them all but those the store skips: event time more than
    # FUTURE_MINUTES ahead or ROLLUP_DAYS back (Pulse's time-warped ones), counted independently.
    now_minute = int(time.time()) // 60
    oldest = now_minute - round(settings.rollup_days * 1440) + 5  # a few minutes' slack for the run's length
    expected = sum(oldest <= event_minute(m.value()) <= now_minute + FUTURE_MINUTES for m in new)
    assert expected > len(new) // 2
    feed = RollupFeed(settings, metadata_interval=1.0)
    feed.start()
    try:
        wait_for("the history feed loads", lambda: feed.caught_up and feed.rollups.snapshot().added >= expected)
        time.sleep(1.0)  # anything beyond (old aggregates, or a run carried over) would show by now
        snap = feed.rollups.snapshot()
        assert snap.added == int(snap.cube["count"].sum()) == expected
    finally:
        feed.stop()
    errors = [orjson.loads(m.value()) for m in read_all(bootstrap, settings.error_topic, idle=1.0)]
    alerts = [orjson.loads(m.value()) for m in read_all(bootstrap, settings.fraud_topic, idle=1.0)]
    assert errors and {e["transaction_id"] for e in errors} <= ids
    assert alerts and {t for a in alerts for t in a["transaction_ids"]} <= ids


def aggregates(counts: list[int], merchant: str) -> list[tuple[bytes, bytes, int]]:
    """Rollup records of `counts[i]` transactions in the i-th minute of the last hour (as a worker writes them)."""
    now_ms = int(time.time() * 1000)
    agg = MinuteAggregator(top=None, max_open=1 << 20, max_merchants=1 << 30)
    for i, n in enumerate(counts):
        ts = now_ms - (i + 2) * 60_000
        for _ in range(n):
            agg.add(i % 3, ts, merchant, "retail", "pos", "approved", "flat", 1000, 20, ())
    return [(key, value, ts) for key, value, ts in agg.flush()]


def recreate(settings: Settings, topic: str) -> None:
    """Delete `topic` and create it again: same name, new topic id (what Pulse's flush does)."""
    delete_topics(settings, [topic])
    ensure_topics(settings, [topic])


def test_history_feed_follows_a_rollups_topic_recreated_under_it(kafka_env: dict[str, str]) -> None:
    settings = Settings.from_env(kafka_env)
    bootstrap, topic = settings.bootstrap_servers, settings.rollups_topic
    ensure_topics(settings, [topic])
    produce(bootstrap, topic, aggregates([40, 30, 30], "merch_old"))
    feed = RollupFeed(settings, metadata_interval=1.0)
    feed.start()
    try:
        wait_for("the feed reads the first topic", lambda: feed.caught_up and feed.rollups.snapshot().added == 100)
        assert "rebuilt" not in feed.status()
        recreate(settings, topic)
        produce(bootstrap, topic, aggregates([7, 5], "merch_new"))
        wait_for("the feed follows the new topic", lambda: feed.caught_up and feed.rollups.snapshot().added == 12)
        time.sleep(1.5)  # more than a metadata look: the totals stay those of the new topic
        snap = feed.rollups.snapshot()
        assert snap.added == 12
        assert set(snap.merchants["merchant_id"]) == {"merch_new"}
        assert feed.rebuilds == 1
        assert "rebuilt from the recreated topic at" in feed.status()
    finally:
        feed.stop()


def existing(kafka_env: dict[str, str], topic_of: Callable[[Settings], str]) -> tuple[Settings, str, str, int]:
    """(settings, bootstrap servers, the topic, now in ms), the topic created."""
    settings = Settings.from_env(kafka_env)
    topic = topic_of(settings)
    ensure_topics(settings, [topic])
    return settings, settings.bootstrap_servers, topic, int(time.time() * 1000)


def test_transactions_feed_clears_its_buffer_when_the_topic_is_recreated(kafka_env: dict[str, str]) -> None:
    settings, bootstrap, topic, now_ms = existing(kafka_env, lambda s: s.transactions_topic)
    produce(bootstrap, topic, [(b"k", event(now_ms - i), now_ms - i) for i in range(300)])
    feed = Feed(settings, RingBuffer(1000), metadata_interval=1.0)
    feed.start()
    try:
        wait_for("the feed reads the first topic", lambda: len(feed.buffer) == 300)
        recreate(settings, topic)
        produce(bootstrap, topic, [(b"k", event(now_ms + i), now_ms + i) for i in range(40)])
        wait_for("the buffer holds the new topic's rows only", lambda: len(feed.buffer) == 40)
        time.sleep(1.5)
        assert len(feed.buffer) == 40
        assert "was recreated" in (feed.health().last_error or "")
    finally:
        feed.stop()


def test_alert_feed_clears_its_log_when_the_alert_topic_is_recreated(kafka_env: dict[str, str]) -> None:
    settings, bootstrap, topic, now_ms = existing(kafka_env, lambda s: s.fraud_topic)

    def alerts(customers: list[str]) -> list[tuple[bytes, bytes, int]]:
        made = [Alert(FRAUD_VELOCITY, c, (f"tx-{c}",), {}, now_ms) for c in customers]
        return [(a.customer_id.encode(), a.to_json({"partition": 0, "offset": i}), now_ms) for i, a in enumerate(made)]

    produce(bootstrap, topic, alerts([f"cust_old_{i}" for i in range(5)]))
    feed = AlertFeed(settings, metadata_interval=1.0)
    feed.start()
    try:
        wait_for("the feed reads the first topic", lambda: len(feed.log.snapshot()) == 5)
        seen = feed.log.total
        recreate(settings, topic)
        produce(bootstrap, topic, alerts(["cust_new_1", "cust_new_2"]))
        wait_for(
            "the log holds the new topic's alerts only",
            lambda: set(feed.log.snapshot()["customer_id"]) == {"cust_new_1", "cust_new_2"},
        )
        assert feed.log.total == seen + 2  # the wall's "new since" count keeps counting
    finally:
        feed.stop()
