"""The hostile corpus on the real broker: every message judged, nothing lost, nothing twice, nothing crashes.

Each hostile message of tests/hostile.py sits between two canaries (valid
JSON with a broken total: exactly one ERR_AMOUNT record each) on one
partition. The worker drains the topic and exits 0; a restarted worker
(whose fraud-state rebuild replays the same hostile history) exits 0 too.
The error log then holds exactly one record per canary, exactly the full
check's records for each hostile message at its own source offset, and no
record twice; every record and alert is JSON of at most 64 KB. `peek` exits
0, and the dashboard's feed holds one row per message of the topic, with the
full check's error codes (tests/e2e/test_hostile_browser.py reads the count
off the pages in the browser).
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any

import orjson
import pytest

from dashboard.core.records import MAX_RECORD_BYTES
from dashboard.core.schema import ERR_AMOUNT
from dashboard.core.settings import Settings
from dashboard.core.validation import check
from dashboard.feed.transactions import Feed
from dashboard.kafka.admin import message_count
from dashboard.store.buffer import RingBuffer, codes_of
from tests.hostile import NOW_MS, WHOLE_MESSAGES, between_canaries
from tests.kafka.kafkatools import create_topic, produce, read_all, run_module

pytestmark = pytest.mark.kafka


def test_hostile_corpus_between_canaries_is_judged_once_each_and_nothing_crashes(kafka_env: dict[str, str]) -> None:
    bootstrap, topic = kafka_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_env["TRANSACTIONS_TOPIC"]
    create_topic(bootstrap, topic, partitions=3)
    ts = NOW_MS  # the corpus's event time: Kafka time equals it, so the full check below judges as the worker
    names = list(WHOLE_MESSAGES)
    values = between_canaries(ts)
    produce(bootstrap, topic, [(None, v, ts) for v in values], partition=0)
    expected = [check(v, ts).codes for v in values]
    assert sum(1 for codes in expected[1::3] if codes) >= len(names) - 4  # nearly all invalid: the test has teeth

    first = run_module("dashboard.ingest", kafka_env, "--processes", "1", "--until-idle", "3", timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    again = run_module("dashboard.ingest", kafka_env, "--processes", "1", "--until-idle", "3", timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Traceback" not in again.stderr
    assert "stopped: 0 messages" in again.stderr  # the first committed everything
    assert "rebuilt fraud state of partitions [0]" in again.stderr  # replaying the hostile history

    raw = read_all(bootstrap, kafka_env["ERROR_TOPIC"])
    assert len({m.value() for m in raw}) == len(raw), "a record written twice"
    by_offset: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
    for m in raw:
        assert len(m.value()) <= MAX_RECORD_BYTES
        record = orjson.loads(m.value())
        assert record["source"]["partition"] == 0
        by_offset[record["source"]["offset"]].append(record)
    for offset, codes in enumerate(expected):
        got = by_offset.get(offset, [])
        if offset % 3 == 1:  # hostile: exactly the full check's records, at its own offset
            assert [r["error_code"] for r in got] == list(codes), names[offset // 3]
        else:  # a canary: exactly one record
            i = 2 * (offset // 3) + (offset % 3) // 2
            assert [(r["error_code"], r["transaction_id"]) for r in got] == [(ERR_AMOUNT, f"canary-{i}")], offset
    assert set(by_offset) <= set(range(len(values)))
    for m in read_all(bootstrap, kafka_env["FRAUD_TOPIC"]):
        assert len(m.value()) <= MAX_RECORD_BYTES and isinstance(orjson.loads(m.value()), dict)

    peek = run_module("dashboard.peek", kafka_env, str(len(values)), timeout=120)
    assert peek.returncode == 0, peek.stdout[-2000:] + peek.stderr[-2000:]
    assert f"Analyzed {len(values)} transactions" in peek.stdout
    assert "Traceback" not in peek.stderr

    # The dashboard's feed: one row per message of the topic, each with the full check's error bits.
    settings = dataclasses.replace(Settings(), bootstrap_servers=bootstrap, transactions_topic=topic)
    feed = Feed(settings, RingBuffer(1000), metadata_interval=0.5, retry_interval=0.5, lag_interval=0.5)
    feed.start()
    try:
        deadline = time.monotonic() + 60
        while feed.buffer.total_appended < len(values) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # and nothing more arrives
        assert feed.buffer.total_appended == message_count(settings, topic) == len(values)
        snap = feed.buffer.snapshot()
        assert list(snap.numeric["offset"]) == list(range(len(values)))
        masks = snap.numeric["error_mask"]
        assert [set(codes_of(int(m))) for m in masks] == [set(codes) for codes in expected]
        assert "dropped" not in (feed.health().last_error or "")  # no message broke decoding
    finally:
        feed.stop()
