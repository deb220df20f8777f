"""The Pulse generator against the real local broker: round trip, init modes, clean stop.

Each test writes to its own uuid-suffixed topic (the `kafka_env` fixture);
a missing broker fails the tests (the `bootstrap` fixture), it never skips them.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, Message, TopicPartition

from dashboard.core.schema import ERR_TIME, INJECTED_HEADER
from dashboard.core.settings import Settings
from dashboard.core.timeunits import DAY_MS
from dashboard.core.validation import check
from dashboard.kafka.admin import delete_topics, ensure_topics, message_count, watermarks

pytestmark = pytest.mark.kafka

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SUMMARY = re.compile(
    r"pulse: produced (\d+) \(history (\d+), live (\d+)\), delivered (\d+), failed (\d+), undelivered (\d+), "
    r"injected (\d+)"
)


@pytest.fixture
def env(kafka_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The conftest environment (fresh topic names); this test's transactions topic is deleted afterwards."""
    yield kafka_env
    settings = Settings.from_env(kafka_env)
    delete_topics(settings, [settings.transactions_topic])


def pulse(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run `python -m dashboard.pulse ARGS` to completion; return it with its stderr text."""
    return subprocess.run(
        [sys.executable, "-m", "dashboard.pulse", *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def summary(stderr: str) -> tuple[int, ...]:
    """(produced, history, live, delivered, failed, undelivered, injected) from the last summary line."""
    found = SUMMARY.findall(stderr)
    assert found, f"no summary line in:\n{stderr}"
    return tuple(int(x) for x in found[-1])


class Record(NamedTuple):
    """One consumed message, reduced to what the tests look at."""

    key: bytes
    value: bytes
    timestamp_type: int
    timestamp_ms: int
    injected: tuple[str, ...]

    @property
    def event(self) -> dict[str, Any]:
        """The decoded JSON value."""
        return orjson.loads(self.value)


def record(msg: Message) -> Record:
    """Reduce a consumed message; `injected` holds the codes of the INJECTED_HEADER header, () if absent."""
    headers = dict(msg.headers() or [])
    codes = headers.get(INJECTED_HEADER)
    kind, stamp = msg.timestamp()
    return Record(
        msg.key() or b"",
        msg.value() or b"",
        kind,
        stamp,
        tuple(codes.decode().split(",")) if isinstance(codes, bytes) else (),
    )


def consume_all(env: dict[str, str], timeout: float = 60) -> list[Record]:
    """Read the whole transactions topic from the beginning up to its current high watermarks."""
    settings = Settings.from_env(env)
    topic = settings.transactions_topic
    ends = {p: high for p, (_low, high) in watermarks(settings, topic).items()}
    consumer = Consumer(settings.kafka_config(group_id=f"test.pulse.{uuid.uuid4().hex[:10]}", enable_auto_commit=False))
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    out: list[Record] = []
    position = {p: 0 for p in ends}
    deadline = time.monotonic() + timeout
    try:
        while any(position[p] < ends[p] for p in ends):
            assert time.monotonic() < deadline, f"read {len(out)} messages, watermarks {ends}, at {position}"
            for msg in consumer.consume(1000, timeout=1.0):
                assert msg.error() is None, msg.error()
                out.append(record(msg))
                position[msg.partition() or 0] = (msg.offset() or 0) + 1
    finally:
        consumer.close()
    return out


def event_ms(event: dict[str, Any]) -> int:
    """The event's timestamp field as epoch ms, truncated exactly like the generator's Kafka timestamp."""
    stamp = datetime.fromisoformat(event["timestamp"])
    return ((stamp - EPOCH) // timedelta(microseconds=1)) // 1000


def test_history_then_live_round_trip(env: dict[str, str]) -> None:
    run_env = {**env, "HISTORY_EVENTS": "2000", "SEED": "11", "INVALID_RATE": "0.05", "EVENT_RATE": "1000"}
    started_ms = time.time() * 1000
    result = pulse(run_env, "--max-events", "200", "--rate-multiplier", "20")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    produced, history, live, delivered, failed, undelivered, injected_total = summary(result.stderr)
    assert (produced, history, live, delivered, failed, undelivered) == (2200, 2000, 200, 2200, 0, 0)

    messages = consume_all(run_env)
    assert len(messages) == 2200
    messages.sort(key=lambda m: m.timestamp_ms)
    past, current = messages[:2000], messages[2000:]
    assert all(m.timestamp_type == TIMESTAMP_CREATE_TIME for m in messages)
    past_ms = [m.timestamp_ms for m in past]
    assert past_ms[0] >= started_ms - 7 * DAY_MS - 60_000
    assert past_ms[-1] - past_ms[0] > 6.5 * DAY_MS
    assert min(m.timestamp_ms for m in current) >= started_ms

    codes: Counter[str] = Counter()
    for m in messages:
        codes.update(m.injected)
        assert check(m.value, m.timestamp_ms).codes == m.injected, m.value
        assert m.key == m.event["customer_id"].encode()
        if ERR_TIME not in m.injected:
            assert event_ms(m.event) == m.timestamp_ms
    assert sum(codes.values()) == injected_total
    assert 50 < injected_total < 180  # 5% of 2200
    assert set(codes) == {"ERR_AMOUNT", "ERR_TIME", "ERR_DEVICE"}


def test_flush_mode_replaces_prior_content(env: dict[str, str]) -> None:
    first = pulse({**env, "HISTORY_EVENTS": "300", "SEED": "1"}, "--history-only")
    assert first.returncode == 0, first.stderr
    old_ids = {m.event["transaction_id"] for m in consume_all(env)}
    assert len(old_ids) == 300

    second = pulse({**env, "HISTORY_EVENTS": "500", "SEED": "2", "EVENT_INIT_MODE": "flush"}, "--history-only")
    assert second.returncode == 0, second.stderr
    assert "deleted topic" in second.stderr
    new_ids = [m.event["transaction_id"] for m in consume_all(env)]
    assert len(new_ids) == 500
    assert not old_ids & set(new_ids)


def test_skip_mode_keeps_existing_history_and_append_adds(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    first = pulse({**env, "HISTORY_EVENTS": "300", "EVENT_INIT_MODE": "append"}, "--history-only")
    assert first.returncode == 0, first.stderr
    assert message_count(settings, settings.transactions_topic) == 300

    skipped = pulse({**env, "HISTORY_EVENTS": "500", "EVENT_INIT_MODE": "skip"}, "--history-only")
    assert skipped.returncode == 0, skipped.stderr
    assert "no history written" in skipped.stderr
    assert summary(skipped.stderr)[0] == 0
    assert message_count(settings, settings.transactions_topic) == 300

    appended = pulse({**env, "HISTORY_EVENTS": "200", "EVENT_INIT_MODE": "append"}, "--history-only")
    assert appended.returncode == 0, appended.stderr
    assert len(consume_all(env)) == 500


def test_skip_mode_writes_history_into_an_empty_topic(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    ensure_topics(settings, [settings.transactions_topic])
    result = pulse({**env, "HISTORY_EVENTS": "400", "EVENT_INIT_MODE": "skip"}, "--history-only")
    assert result.returncode == 0, result.stderr
    assert len(consume_all(env)) == 400


def test_sigterm_mid_stream_flushes_and_exits_0(env: dict[str, str]) -> None:
    settings = Settings.from_env(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard.pulse", "--no-history", "--rate-multiplier", "5"],
        env={**env, "EVENT_RATE": "1000"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while message_count(settings, settings.transactions_topic) < 20:
            assert proc.poll() is None, "generator exited early"
            assert time.monotonic() < deadline, "no live events within 60 s"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "received SIGTERM" in stderr
    assert "Traceback" not in stderr
    produced, history, live, delivered, failed, undelivered, _ = summary(stderr)
    assert history == 0 and produced == live == delivered >= 20, stderr
    assert failed == undelivered == 0, stderr
    assert len(consume_all(env)) == produced, stderr
