"""Fraud alerts on the real broker: recall on injected patterns, no false velocity/geo, exactly once."""

from __future__ import annotations

import collections
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from dashboard.core.schema import FRAUD_AMOUNT, FRAUD_GEO, FRAUD_HEADER, FRAUD_PATTERN_HEADER, FRAUD_VELOCITY
from tests.kafka.kafkatools import committed_total, pipeline, read_all, run_module, start_module

pytestmark = pytest.mark.kafka


def generate(env: dict[str, str], events: int, fraud_rate: float, seed: int) -> None:
    gen_env = dict(env, HISTORY_EVENTS=str(events), FRAUD_RATE=str(fraud_rate), SEED=str(seed), INVALID_RATE="0.01")
    gen_env.update(HISTORY_DAYS="1", CUSTOMER_COUNT="300", EVENT_INIT_MODE="flush")
    result = run_module("dashboard.pulse", gen_env, "--history-only")
    assert result.returncode == 0, result.stderr[-2000:]


def injected_patterns(env: dict[str, str]) -> dict[tuple[str, str], set[str]]:
    """(rule, pattern id) -> transaction ids of the injected pattern, from the generator's headers."""
    patterns: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for msg in read_all(env["KAFKA_BOOTSTRAP_SERVERS"], env["TRANSACTIONS_TOPIC"], read_committed=False):
        headers = dict(msg.headers() or [])
        if FRAUD_HEADER in headers:
            key = (headers[FRAUD_HEADER].decode(), headers[FRAUD_PATTERN_HEADER].decode())
            patterns[key].add(orjson.loads(msg.value())["transaction_id"])
    return patterns


def alerts(env: dict[str, str]) -> list[dict[str, Any]]:
    return [orjson.loads(m.value()) for m in read_all(env["KAFKA_BOOTSTRAP_SERVERS"], env["FRAUD_TOPIC"])]


def alert_key(alert: dict[str, Any]) -> tuple[Any, ...]:
    return (alert["rule"], alert["customer_id"], tuple(alert["transaction_ids"]))


def test_every_injected_pattern_is_alerted_and_each_alert_once(kafka_env: dict[str, str]) -> None:
    generate(kafka_env, 20_000, 0.05, seed=11)
    patterns = injected_patterns(kafka_env)
    assert {rule for rule, _ in patterns} == {FRAUD_VELOCITY, FRAUD_GEO, FRAUD_AMOUNT}

    result = run_module("dashboard.ingest", kafka_env, "--processes", "1", "--until-idle", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    got = alerts(kafka_env)
    keys = [alert_key(a) for a in got]
    assert len(keys) == len(set(keys)), "an alert was written twice"
    assert all("source" in a and a["evidence"] for a in got)
    missed = [
        (rule, pid)
        for (rule, pid), ids in patterns.items()
        if not any(a["rule"] == rule and ids & set(a["transaction_ids"]) for a in got)
    ]
    assert not missed, f"{len(missed)} injected patterns raised no alert of their rule: {missed[:5]}"


def test_no_velocity_or_geo_alert_without_injected_fraud(kafka_env: dict[str, str]) -> None:
    generate(kafka_env, 20_000, 0.0, seed=12)
    result = run_module("dashboard.ingest", kafka_env, "--processes", "1", "--until-idle", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    rules = collections.Counter(a["rule"] for a in alerts(kafka_env))
    assert rules[FRAUD_VELOCITY] == 0 and rules[FRAUD_GEO] == 0, rules


def test_worker_killed_mid_stream_yields_the_same_alerts_once(
    kafka_env: dict[str, str], unique: Any, tmp_path: Path
) -> None:
    generate(kafka_env, 120_000, 0.05, seed=13)
    reference_env = dict(kafka_env, FRAUD_TOPIC=unique("test.fraud_ref"), ERROR_TOPIC=unique("test.err_ref"))
    reference_env["INGEST_GROUP"] = unique("test.ingest_ref")
    result = run_module("dashboard.ingest", reference_env, "--processes", "1", "--until-idle", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    reference = collections.Counter(alert_key(a) for a in alerts(reference_env))
    assert reference

    bootstrap, topic, group = pipeline(kafka_env)
    total = sum(1 for _ in read_all(bootstrap, topic, read_committed=False))
    txn_id = f"test-fraud-{uuid.uuid4().hex[:8]}"
    # First kill: right after the first commit. Second: one second into the restarted
    # worker, whose first act was to rebuild its fraud state from the committed history.
    worker = start_module(
        "dashboard.ingest", kafka_env, "--processes", "1", "--transactional-id", txn_id, log=tmp_path / "w1.log"
    )
    deadline = time.monotonic() + 90
    while committed_total(bootstrap, group, topic) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    first = committed_total(bootstrap, group, topic)
    assert 0 < first < total, (first, total)
    worker = start_module(
        "dashboard.ingest", kafka_env, "--processes", "1", "--transactional-id", txn_id, log=tmp_path / "w2.log"
    )
    deadline = time.monotonic() + 90
    while "rebuilt fraud state" not in (tmp_path / "w2.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.0)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(10)
    rebuilt = [line for line in (tmp_path / "w2.log").read_text().splitlines() if "rebuilt fraud state" in line]
    assert rebuilt and " from 0 messages" not in rebuilt[0], rebuilt
    result = run_module(
        "dashboard.ingest", kafka_env, "--processes", "1", "--until-idle", "3", "--transactional-id", txn_id
    )
    assert result.returncode == 0, result.stderr[-2000:]
    got = collections.Counter(alert_key(a) for a in alerts(kafka_env))
    assert got == reference
