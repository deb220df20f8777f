"""The ingest worker against the real broker: exact error log, poison input, kill -9, scale-out."""

from __future__ import annotations

import collections
import os
import random
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer

from dashboard.core.schema import ERR_AMOUNT, ERR_DEVICE, ERR_SCHEMA, ERR_TIME
from tests.kafka.kafkatools import committed_total, create_topic, pipeline, produce, read_all, run_module, start_module

pytestmark = pytest.mark.kafka

BASE_MS = int(time.time() * 1000) - 3_600_000  # an hour ago: Kafka timestamps we set


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def crafted(i: int, rng: random.Random) -> tuple[bytes | None, bytes | None, int, list[str]]:
    """Return (key, value, kafka_ts, intended error codes) of event `i`, broken by construction."""
    ts = BASE_MS + i
    ev: dict[str, Any] = {
        "transaction_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "timestamp": iso(ts),
        "customer_id": f"cust_{i % 97}",
        "merchant_id": f"merch_{i % 13}",
        "merchant_category": "retail",
        "payment_method": "pos",
        "amount": 1000 + i,
        "location": {"lat": 35.7, "lng": 51.3},
        "device_info": {},
        "status": "approved",
        "commission_type": "flat",
        "commission_amount": 20,
        "vat_amount": 90,
        "total_amount": 1110 + i,
        "customer_type": "individual",
        "risk_level": 2,
        "failure_reason": None,
    }
    kind = i % 20
    codes: list[str] = []
    if kind == 1:
        ev["total_amount"] += 1
        codes = [ERR_AMOUNT]
    elif kind == 2:
        ev["timestamp"] = iso(ts + 3_600_000)
        codes = [ERR_TIME]
    elif kind == 3:
        ev["timestamp"] = iso(ts - 25 * 3_600_000)
        codes = [ERR_TIME]
    elif kind == 4:
        ev["payment_method"], ev["device_info"] = "mobile", {"os": "Windows"}
        codes = [ERR_DEVICE]
    elif kind == 5:
        ev["payment_method"], ev["device_info"], ev["total_amount"] = "mobile", {}, 5
        codes = [ERR_AMOUNT, ERR_DEVICE]
    elif kind == 6:
        ev["status"] = "weird"
        codes = [ERR_SCHEMA]
    return ev["customer_id"].encode(), orjson.dumps(ev), ts, codes


POISON: list[bytes | None] = [
    b"\xff\xfe\x00garbage",
    None,
    b"",
    b"x" * 900_000,
    b"[" * 100_000 + b"]" * 100_000,
    b'"just a string"',
]


def expected_and_messages(n: int, seed: int = 1) -> tuple[list[tuple[bytes | None, bytes | None, int]], list[str]]:
    rng = random.Random(seed)
    messages, codes = [], []
    for i in range(n):
        key, value, ts, c = crafted(i, rng)
        messages.append((key, value, ts))
        codes.extend(c)
    return messages, codes


def error_log(env: dict[str, str]) -> list[dict[str, Any]]:
    return [orjson.loads(m.value()) for m in read_all(env["KAFKA_BOOTSTRAP_SERVERS"], env["ERROR_TOPIC"])]


def test_error_log_holds_exactly_the_broken_rules_and_poison_is_survived(kafka_env: dict[str, str]) -> None:
    bootstrap, topic = kafka_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_env["TRANSACTIONS_TOPIC"]
    create_topic(bootstrap, topic)
    messages, codes = expected_and_messages(2000)
    produce(bootstrap, topic, messages[:1000])
    produce(bootstrap, topic, [(b"poison", value, BASE_MS) for value in POISON])
    produce(bootstrap, topic, messages[1000:])

    result = run_module("dashboard.ingest", kafka_env, "--processes", "1", "--until-idle", "3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr

    records = error_log(kafka_env)
    got = collections.Counter(r["error_code"] for r in records)
    want = collections.Counter(codes) + collections.Counter({ERR_SCHEMA: len(POISON)})
    assert got == want
    # Each record names its source exactly once per rule, and carries the rule's evidence.
    assert len({(r["source"]["partition"], r["source"]["offset"], r["error_code"]) for r in records}) == len(records)
    amount = next(r for r in records if r["error_code"] == ERR_AMOUNT)
    assert {"expected_total", "actual_total", "transaction_id"} <= amount.keys()
    poison = [r for r in records if r["transaction_id"] is None]
    assert len(poison) == len(POISON)
    assert all(len(r["excerpt"]) <= 800 for r in poison)
    # The worker committed everything it read.
    assert committed_total(bootstrap, kafka_env["INGEST_GROUP"], topic) == len(messages) + len(POISON)


def test_kill_9_mid_stream_neither_loses_nor_duplicates(kafka_env: dict[str, str], tmp_path: Path) -> None:
    bootstrap, topic, group = pipeline(kafka_env)
    create_topic(bootstrap, topic)
    messages, codes = expected_and_messages(150_000, seed=2)
    produce(bootstrap, topic, messages)
    txn_id = f"test-worker-{uuid.uuid4().hex[:8]}"
    # Transactions of 20,000 messages at most (the default 100,000 while reading a backlog), so that each
    # incarnation commits a few before its kill, and the kills land mid-stream.
    env = {**kafka_env, "TXN_MAX_MESSAGES": "20000"}
    rng = random.Random(3)
    last = 0
    open_records = 0  # error records written but not committed (open or aborted transactions), after the last kill
    inside = 0  # kills that landed inside an open transaction
    for _ in range(3):
        worker = start_module(
            "dashboard.ingest", env, "--processes", "1", "--transactional-id", txn_id, log=tmp_path / "w.log"
        )
        deadline = time.monotonic() + 60
        progress = last
        while progress <= last and time.monotonic() < deadline:  # wait for this incarnation's first commit
            time.sleep(0.05)
            progress = committed_total(bootstrap, group, topic)
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        assert last < progress < len(messages), (last, progress, "kill landed outside the stream")
        last = progress
        # The dead worker's open transaction stays open (until its successor fences it): its records are
        # visible read_uncommitted but not read_committed. More of them than after the last kill: the kill
        # landed inside an open transaction.
        uncommitted = len(read_all(bootstrap, kafka_env["ERROR_TOPIC"], read_committed=False, idle=1.5))
        committed = len(read_all(bootstrap, kafka_env["ERROR_TOPIC"], idle=1.5))
        if uncommitted - committed > open_records:
            inside += 1
        open_records = uncommitted - committed
    assert inside >= 1, "no kill landed inside an open transaction: the test proved nothing"
    result = run_module(
        "dashboard.ingest", kafka_env, "--processes", "1", "--until-idle", "3", "--transactional-id", txn_id
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert committed_total(bootstrap, group, topic) == len(messages)

    records = error_log(kafka_env)
    keys = [(r["source"]["partition"], r["source"]["offset"], r["error_code"]) for r in records]
    assert len(keys) == len(set(keys)), "duplicated error records under read_committed"
    assert collections.Counter(r["error_code"] for r in records) == collections.Counter(codes)
    # Uncommitted (aborted) records did exist: read_uncommitted sees at least as many.
    raw = read_all(bootstrap, kafka_env["ERROR_TOPIC"], read_committed=False)
    assert len(raw) >= len(records)


def test_two_workers_split_the_partitions(kafka_env: dict[str, str], tmp_path: Path) -> None:
    bootstrap, topic = kafka_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_env["TRANSACTIONS_TOPIC"]
    create_topic(bootstrap, topic, partitions=4)
    messages, codes = expected_and_messages(100_000, seed=4)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    workers = [
        start_module("dashboard.ingest", kafka_env, "--processes", "1", "--until-idle", "8", log=log) for log in logs
    ]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # produce once the group has settled on a split
        assigned = [[ln for ln in log.read_text().splitlines() if "assigned partitions" in ln] for log in logs]
        if all(a and "[0, 1, 2, 3]" not in a[-1] for a in assigned):
            break
        time.sleep(0.1)
    produce(bootstrap, topic, messages)
    for w in workers:
        assert w.wait(180) == 0
    processed = []
    for log in logs:
        text = log.read_text()
        assert "Traceback" not in text
        line = next(line for line in text.splitlines() if "stopped:" in line)
        processed.append(int(line.split("stopped: ")[1].split(" messages")[0]))
    assert all(n > 0 for n in processed), processed
    assert sum(processed) >= len(messages)  # a rebalance may hand a partition over: re-reads, never losses
    records = error_log(kafka_env)
    keys = [(r["source"]["partition"], r["source"]["offset"], r["error_code"]) for r in records]
    assert len(keys) == len(set(keys))
    assert collections.Counter(r["error_code"] for r in records) == collections.Counter(codes)


def test_two_processes_from_one_command_write_the_exact_error_log(kafka_env: dict[str, str]) -> None:
    bootstrap, topic = kafka_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_env["TRANSACTIONS_TOPIC"]
    create_topic(bootstrap, topic, partitions=6)
    messages, codes = expected_and_messages(20_000, seed=5)
    produce(bootstrap, topic, messages)
    base = f"test-procs-{uuid.uuid4().hex[:8]}"

    result = run_module(
        "dashboard.ingest", kafka_env, "--processes", "2", "--until-idle", "3", "--transactional-id", base
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    # Two workers ran, each with its own transactional id derived from the base.
    assert f"ingest worker {base}-0 started" in result.stderr
    assert f"ingest worker {base}-1 started" in result.stderr
    assert sum("stopped:" in line for line in result.stderr.splitlines()) == 2
    records = error_log(kafka_env)
    keys = [(r["source"]["partition"], r["source"]["offset"], r["error_code"]) for r in records]
    assert len(keys) == len(set(keys))
    assert collections.Counter(r["error_code"] for r in records) == collections.Counter(codes)
    assert committed_total(bootstrap, kafka_env["INGEST_GROUP"], topic) == len(messages)


def test_until_idle_waits_until_the_group_has_drained_every_partition(
    kafka_env: dict[str, str], tmp_path: Path
) -> None:
    """A partition held by another member that commits nothing keeps an idle worker running; once it leaves, the
    worker takes the partition, processes it and exits 0 with the whole topic committed."""
    bootstrap, topic, group = pipeline(kafka_env)
    create_topic(bootstrap, topic, partitions=2)
    messages, codes = expected_and_messages(4000, seed=5)
    produce(bootstrap, topic, messages)
    stop = threading.Event()
    assigned = threading.Event()

    def squatter() -> None:  # a member that reads and commits nothing, like a stuck or dying worker
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        consumer.subscribe([topic], on_assign=lambda c, parts: assigned.set())
        try:
            while not stop.is_set():
                consumer.consume(100, 0.2)
        finally:
            consumer.close()

    thread = threading.Thread(target=squatter, daemon=True)
    thread.start()
    assert assigned.wait(30)
    worker = start_module(
        "dashboard.ingest", kafka_env, "--processes", "1", "--until-idle", "2", log=tmp_path / "w.log"
    )
    try:
        deadline = time.monotonic() + 60
        while "idle, but the group has not committed" not in (tmp_path / "w.log").read_text():
            assert worker.poll() is None, (tmp_path / "w.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the worker never went idle"
            time.sleep(0.2)
        time.sleep(4)  # twice --until-idle: an idle worker that ignored the other partition would have left
        assert worker.poll() is None, "exited with a partition not drained"
        assert 0 < committed_total(bootstrap, group, topic) < len(messages)
        stop.set()
        thread.join(30)
        assert worker.wait(120) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    assert committed_total(bootstrap, group, topic) == len(messages)
    assert collections.Counter(r["error_code"] for r in error_log(kafka_env)) == collections.Counter(codes)
