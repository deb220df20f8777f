"""Helpers for tests against the real broker: produce, read back, run workers."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]


def pipeline(env: Mapping[str, str]) -> tuple[str, str, str]:
    """(bootstrap servers, transactions topic, ingest group) of a test's environment."""
    return env["KAFKA_BOOTSTRAP_SERVERS"], env["TRANSACTIONS_TOPIC"], env["INGEST_GROUP"]


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    """Create `topic` and wait until it has leaders."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        future.result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=10).topics.get(topic)
        if meta is not None and meta.error is None and len(meta.partitions) == partitions:
            return
        time.sleep(0.1)
    raise TimeoutError(topic)


def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes | None, int | None]],
    partition: int | None = None,
) -> int:
    """Produce (key, value, timestamp_ms) messages, flush, and return how many were delivered."""
    failures: list[Any] = []
    # Idempotence keeps the order of a partition's messages through retries (a fresh topic's
    # first request may meet NOT_LEADER_FOR_PARTITION while later batches already land).
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "message.max.bytes": 2_000_000, "enable.idempotence": True}
    )
    n = 0
    for key, value, ts in messages:
        kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": lambda e, m: e and failures.append(e)}
        if ts is not None:
            kwargs["timestamp"] = ts
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        n += 1
    assert producer.flush(60) == 0, "messages left undelivered"
    assert not failures, failures
    return n


def read_all(
    bootstrap: str, topic: str, read_committed: bool = True, idle: float = 3.0, deadline: float = 120.0
) -> list[Message]:
    """Read every message of `topic` from the start until none arrives for `idle` seconds."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])  # offset 0: beginning
        out: list[Message] = []
        end = time.monotonic() + deadline
        last = time.monotonic()
        while time.monotonic() < end and time.monotonic() - last < idle:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    out.append(msg)
                    last = time.monotonic()
        return out
    finally:
        consumer.close()


def committed_total(bootstrap: str, group: str, topic: str) -> int:
    """Sum of the committed offsets of `group` on `topic` (0 for none).

    Offsets a worker sent to a transaction it has not committed (it was killed) do not count, and
    do not hold the answer back: read_uncommitted fetches without KIP-447's require_stable.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = consumer.committed([TopicPartition(topic, p) for p in meta.partitions], timeout=10)
        return sum(max(tp.offset, 0) for tp in parts)
    finally:
        consumer.close()


def start_module(module: str, env: Mapping[str, str], *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start `python -m module args` with `env`, output to `log` (or discarded)."""
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
    )


def run_module(
    module: str, env: Mapping[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run `python -m module args` to completion; return its result with text output."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
