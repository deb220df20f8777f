"""The dashboard feed against a real broker: exact contents, backfill, health, no commits, restarts.

Tests marked `kafka` use the shared local broker. The restart test runs its
own second broker (scripts/local-kafka with another port and state
directory), so the shared one is never stopped. The pure parts of the feed
(backfill shares, RateWindow, FeedStatus) are tested in tests/unit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from dashboard.core.schema import ERR_AMOUNT, ERR_DEVICE, ERR_SCHEMA, ERR_TIME
from dashboard.core.settings import Settings
from dashboard.core.validation import check
from dashboard.feed import transactions as feed_module
from dashboard.feed.status import Health
from dashboard.feed.transactions import Feed
from dashboard.store.buffer import ERROR_BITS, Batch, RingBuffer, mask_of
from dashboard.store.decode import RawMessage
from tests.feed_events import event

ROOT = Path(__file__).resolve().parents[2]
NOW_MS = int(time.time() * 1000)
T = TypeVar("T")
kafka = pytest.mark.kafka


# -- helpers -------------------------------------------------------------------
def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll `probe` until it returns a truthy value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def wait_health(feed: Feed, what: str, ok: Callable[[Health], bool], timeout: float = 30.0) -> Health:
    """Return the first health snapshot of `feed` for which `ok` holds; fail after `timeout` seconds."""

    def probe() -> Health | None:
        health = feed.health()
        return health if ok(health) else None

    return wait_for(what, probe, timeout)


def fast_feed(settings: Settings, capacity: int) -> Feed:
    """A feed with short intervals, so tests wait less."""
    return Feed(
        settings, RingBuffer(capacity), metadata_interval=0.5, retry_interval=0.5, lag_interval=0.5, probe_interval=0.5
    )


@dataclass(frozen=True)
class Sent:
    """One produced message as the broker stored it."""

    partition: int
    offset: int
    value: bytes
    ts_ms: int

    @property
    def transaction_id(self) -> str | None:
        checked = check(self.value, self.ts_ms)
        return checked.transaction.transaction_id if checked.transaction else None


def produce(bootstrap: str, topic: str, items: list[tuple[int, bytes, int]]) -> list[Sent]:
    """Produce (partition, value, kafka_ts_ms) items; return what was stored, in delivery order."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    sent: list[Sent] = []
    errors: list[Any] = []

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            sent.append(Sent(msg.partition(), msg.offset(), msg.value(), msg.timestamp()[1]))

    for partition, value, ts in items:
        producer.produce(topic, value, partition=partition, timestamp=ts, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors
    return sent


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        future.result(30)

    def ready() -> bool:
        meta = admin.list_topics(topic, timeout=10).topics.get(topic)
        return meta is not None and meta.error is None and len(meta.partitions) == partitions

    wait_for(f"topic {topic}", ready)


def rows(buffer: RingBuffer) -> dict[tuple[int, int], tuple[str, int]]:
    """{(partition, offset): (transaction id, error mask)} of every row in the buffer."""
    snap = buffer.snapshot()
    keys = zip(snap.numeric["partition"].tolist(), snap.numeric["offset"].tolist(), strict=True)
    values = zip([i.decode() for i in snap.ids.tolist()], snap.numeric["error_mask"].tolist(), strict=True)
    out = dict(zip(keys, values, strict=True))
    assert len(out) == len(snap), "duplicate rows"
    return out


def expected_rows(sent: list[Sent]) -> dict[tuple[int, int], tuple[str, int]]:
    return {(s.partition, s.offset): (s.transaction_id or "", mask_of(check(s.value, s.ts_ms).codes)) for s in sent}


@pytest.fixture
def settings_for(bootstrap: str, unique: Callable[[str], str]) -> Iterator[Callable[..., Settings]]:
    """Make settings with fresh topic and group names; delete the topics afterwards."""
    made: list[Settings] = []

    def make(servers: str | None = None, **env: str) -> Settings:
        values = {
            "KAFKA_BOOTSTRAP_SERVERS": servers or bootstrap,
            "TRANSACTIONS_TOPIC": unique("test.feed.transactions"),
            "ERROR_TOPIC": unique("test.feed.error_logs"),
            "INGEST_GROUP": unique("test.feed.ingest"),
            **env,
        }
        made.append(Settings.from_env(values))
        return made[-1]

    yield make
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = {s.transactions_topic for s in made} | {s.error_topic for s in made}
    existing = [n for n in names if n in admin.list_topics(timeout=10).topics]
    if existing:
        for future in admin.delete_topics(existing, operation_timeout=30).values():
            future.result(30)


@pytest.fixture
def feeds() -> Iterator[list[Feed]]:
    """Feeds a test started; stopped afterwards even when the test fails."""
    started: list[Feed] = []
    yield started
    for feed in started:
        feed.stop()


# -- the shared broker ----------------------------------------------------------------
@kafka
def test_feed_holds_exactly_the_produced_events_and_commits_nothing(
    bootstrap: str, settings_for: Callable[..., Settings], feeds: list[Feed]
) -> None:
    settings = settings_for()
    create_topic(bootstrap, settings.transactions_topic)
    kinds = ["valid"] * 6 + [ERR_AMOUNT, ERR_TIME, ERR_DEVICE, ERR_SCHEMA, "garbage"]
    items = [(i % 3, event(NOW_MS - 60_000 + i, kinds[i % len(kinds)]), NOW_MS - 60_000 + i) for i in range(99)]
    sent = produce(bootstrap, settings.transactions_topic, items)

    feed = fast_feed(settings, 1000)
    feeds.append(feed)
    feed.start()
    feed.start()  # idempotent
    health = wait_health(
        feed, "every message and a zero lag", lambda h: h.messages_total == len(sent) and h.total_lag == 0
    )
    assert rows(feed.buffer) == expected_rows(sent)
    assert feed.buffer.total_appended == len(sent)

    by_code = {code: sum(code in check(s.value, s.ts_ms).codes for s in sent) for code in ERROR_BITS}
    assert by_code == {ERR_AMOUNT: 9, ERR_TIME: 9, ERR_DEVICE: 9, ERR_SCHEMA: 18}  # garbage is ERR_SCHEMA too
    assert dict(health.invalid_counts) == by_code
    assert health.invalid_total == sum(not check(s.value, s.ts_ms).valid for s in sent) == 45
    assert health.state == "connected" and health.topic_found and health.partitions == 3
    assert dict(health.lag) == {0: 0, 1: 0, 2: 0}
    assert health.newest_kafka_ts_ms == max(s.ts_ms for s in sent)
    assert health.messages_per_second == pytest.approx(len(sent) / 10.0)  # all within the 10 s window
    assert health.last_message_age is not None and 0 <= health.last_message_age < 10
    assert not health.stale
    assert health.message == f"reading 3 partitions of {settings.transactions_topic} at {bootstrap}"
    with pytest.raises(TypeError):
        health.lag[0] = 5  # type: ignore[index]  # read-only mapping

    feed.stop()
    assert not any(t.is_alive() for t in feed._threads)
    # Nothing committed, not even on close: the group does not exist on the broker.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    groups = {g.group_id for g in admin.list_consumer_groups().result(10).valid}
    assert feed.group_id not in groups
    tps = [TopicPartition(settings.transactions_topic, p) for p in range(3)]
    request = [ConsumerGroupTopicPartitions(feed.group_id, tps)]
    result = admin.list_consumer_group_offsets(request)[feed.group_id].result(10)
    assert [tp.offset for tp in result.topic_partitions] == [-1001] * 3  # OFFSET_INVALID: none committed
    with pytest.raises(RuntimeError):
        feed.start()


@kafka
def test_backfill_reads_the_newest_messages_that_fit_then_tails(
    bootstrap: str, settings_for: Callable[..., Settings], feeds: list[Feed]
) -> None:
    settings = settings_for()
    create_topic(bootstrap, settings.transactions_topic)
    counts = {0: 500, 1: 301, 2: 99}
    items = [(p, event(NOW_MS - 10_000 + i), NOW_MS - 10_000 + i) for p, n in counts.items() for i in range(n)]
    sent = produce(bootstrap, settings.transactions_topic, items)

    feed = fast_feed(settings, 200)
    feeds.append(feed)
    feed.start()
    wait_health(feed, "a full buffer and zero lag", lambda h: h.total_lag == 0 and len(feed.buffer) == 200)
    # Shares of 200 proportional to 500/301/99 by largest remainder: 111, 67, 22.
    newest = {0: range(389, 500), 1: range(234, 301), 2: range(77, 99)}
    expected = expected_rows([s for s in sent if s.offset in newest[s.partition]])
    assert rows(feed.buffer) == expected
    assert feed.buffer.total_appended == 200  # nothing older was read and then evicted
    assert feed.health().messages_total == 200

    live = produce(bootstrap, settings.transactions_topic, [(2, event(NOW_MS + i), NOW_MS + i) for i in range(5)])
    wait_for("the live messages", lambda: feed.buffer.total_appended == 205)
    held = rows(feed.buffer)
    assert len(held) == 200
    assert expected_rows(live).items() <= held.items()
    assert len(set(expected) - set(held)) == 5  # five of the backfilled rows were evicted


@kafka
def test_feed_waits_for_the_topic_and_picks_up_new_partitions(
    bootstrap: str, settings_for: Callable[..., Settings], feeds: list[Feed]
) -> None:
    settings = settings_for()
    feed = fast_feed(settings, 1000)
    feeds.append(feed)
    feed.start()
    health = wait_health(feed, "the connected state", lambda h: h.state == "connected")
    assert not health.topic_found
    assert health.message == f"connected to {bootstrap}; waiting for topic {settings.transactions_topic}"
    time.sleep(1.5)  # several metadata rounds: none may create the topic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert settings.transactions_topic not in admin.list_topics(timeout=10).topics
    assert settings.error_topic not in admin.list_topics(timeout=10).topics

    create_topic(bootstrap, settings.transactions_topic, partitions=2)
    first = produce(bootstrap, settings.transactions_topic, [(p, event(NOW_MS), NOW_MS) for p in (0, 1, 1)])
    wait_for("the first messages", lambda: feed.buffer.total_appended == 3)
    assert feed.health().topic_found

    admin.create_partitions([NewPartitions(settings.transactions_topic, 3)])[settings.transactions_topic].result(30)
    later = produce(bootstrap, settings.transactions_topic, [(2, event(NOW_MS), NOW_MS), (0, event(NOW_MS), NOW_MS)])
    wait_for("a message in the new partition", lambda: feed.buffer.total_appended == 5)
    assert rows(feed.buffer) == expected_rows(first + later)
    wait_health(feed, "3 partitions", lambda h: h.partitions == 3)


@kafka
def test_a_message_that_breaks_decoding_is_dropped_and_the_feed_goes_on(
    bootstrap: str, settings_for: Callable[..., Settings], feeds: list[Feed], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = feed_module.to_batch

    def buggy(messages: list[RawMessage], skew_ms: int = 1000) -> Batch:
        if any(m.value == b"POISON" for m in messages):
            raise ValueError("a bug in decoding")
        return real(messages, skew_ms)

    monkeypatch.setattr(feed_module, "to_batch", buggy)
    settings = settings_for()
    create_topic(bootstrap, settings.transactions_topic)
    items = [(0, event(NOW_MS + i) if i != 4 else b"POISON", NOW_MS + i) for i in range(10)]
    sent = produce(bootstrap, settings.transactions_topic, items)
    feed = fast_feed(settings, 100)
    feeds.append(feed)
    feed.start()
    health = wait_health(feed, "the nine good messages", lambda h: h.messages_total == 9)
    assert rows(feed.buffer) == expected_rows([s for s in sent if s.value != b"POISON"])
    assert health.last_error is not None and "[0] at offset 4" in health.last_error
    later = produce(bootstrap, settings.transactions_topic, [(1, event(NOW_MS), NOW_MS)])
    wait_health(feed, "a later message", lambda h: h.messages_total == 10)
    assert expected_rows(later).items() <= rows(feed.buffer).items()


@kafka
def test_pipeline_figures_ingest_lag_and_error_records(
    bootstrap: str, settings_for: Callable[..., Settings], feeds: list[Feed]
) -> None:
    settings = settings_for()
    topic, errors, group = settings.transactions_topic, settings.error_topic, settings.ingest_group
    create_topic(bootstrap, topic)
    create_topic(bootstrap, errors, partitions=2)
    produce(bootstrap, topic, [(p, event(NOW_MS), NOW_MS) for p, n in {0: 10, 1: 20, 2: 30}.items() for _ in range(n)])
    commit(bootstrap, group, [TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 20)])  # 2: never committed
    write_transactions(bootstrap, errors, [(5, True), (3, False), (2, True)])  # 7 committed records

    feed = fast_feed(settings, 1000)
    feeds.append(feed)
    feed.start()
    health = wait_health(feed, "both figures", lambda h: h.ingest_lag is not None and h.error_records is not None)
    assert health.ingest_lag == (10 - 4) + (20 - 20) + (30 - 0)
    assert health.error_records == 7
    # High minus low would count the aborted records and the commit markers too.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused"})
    try:
        span = sum(h - lo for lo, h in (consumer.get_watermark_offsets(TopicPartition(errors, p), 10) for p in (0, 1)))
    finally:
        consumer.close()
    assert span > 7

    commit(bootstrap, group, [TopicPartition(topic, 2, 30)])
    write_transactions(bootstrap, errors, [(4, True)])
    wait_health(feed, "updated figures", lambda h: h.ingest_lag == 6 and h.error_records == 11)
    # The feed read the group's offsets without ever joining it.
    assert admin.describe_consumer_groups([group])[group].result(10).members == []


@kafka
def test_ingest_lag_answers_while_a_killed_workers_offsets_wait_in_its_open_transaction(
    bootstrap: str, settings_for: Callable[..., Settings], feeds: list[Feed]
) -> None:
    # A worker killed between sending its offsets to a transaction and committing it leaves them
    # pending until the broker aborts the transaction (transaction.timeout.ms) or a new worker
    # fences it. A read_committed offset fetch waits for them all that time (CI saw a 10 s timeout).
    settings = settings_for()
    topic, group = settings.transactions_topic, settings.ingest_group
    create_topic(bootstrap, topic, partitions=1)
    produce(bootstrap, topic, [(0, event(NOW_MS), NOW_MS) for _ in range(10)])
    commit(bootstrap, group, [TopicPartition(topic, 0, 4)])
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": f"test-feed-{uuid.uuid4().hex}",
            "transaction.timeout.ms": 60000,
        }
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    outsider = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        producer.send_offsets_to_transaction([TopicPartition(topic, 0, 9)], outsider.consumer_group_metadata(), 30)
    finally:
        outsider.close()
    try:
        feed = fast_feed(settings, 100)
        feeds.append(feed)
        feed.start()
        # Well before the broker would abort the transaction: the last committed offset counts.
        health = wait_health(feed, "the ingest lag", lambda h: h.ingest_lag is not None, timeout=20)
        assert health.ingest_lag == 10 - 4
    finally:
        producer.abort_transaction(30)
    wait_health(feed, "the same lag after the abort", lambda h: h.ingest_lag == 6)


def commit(bootstrap: str, group: str, offsets: list[TopicPartition]) -> None:
    """Commit `offsets` for `group` without joining it."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def write_transactions(bootstrap: str, topic: str, batches: list[tuple[int, bool]]) -> None:
    """Write (records, commit?) transactions, records spread over partitions 0 and 1."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"test-feed-{uuid.uuid4().hex}"})
    producer.init_transactions(30)
    for n, keep in batches:
        producer.begin_transaction()
        for i in range(n):
            producer.produce(topic, b'{"error": true}', partition=i % 2)
        if keep:
            producer.commit_transaction(30)
        else:
            producer.flush(30)  # make sure the aborted records take offsets
            producer.abort_transaction(30)


# -- a broker of our own, stopped and started -----------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """A second scripts/local-kafka broker with its own ports and state directory."""

    def __init__(self, state: Path) -> None:
        self.port = free_port()
        libs = state.parent / "kafka-home"
        libs.mkdir(exist_ok=True)
        # Reuse the jars of the main broker instead of downloading them again.
        (libs / "libs").symlink_to(ROOT / ".local-kafka" / "lib")
        self.env = dict(
            os.environ,
            LOCAL_KAFKA_DIR=str(state),
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(free_port()),
            KAFKA_HOME=str(libs),
            KAFKA_HEAP_OPTS="-Xms128m -Xmx512m",
            PYTHON=sys.executable,
        )
        self.bootstrap = f"localhost:{self.port}"

    def run(self, command: str) -> None:
        result = subprocess.run(
            [str(ROOT / "scripts" / "local-kafka"), command],
            check=False,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"local-kafka {command}: {result.stdout}{result.stderr}"


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    if not (ROOT / ".local-kafka" / "lib").is_dir():
        subprocess.run([str(ROOT / "scripts" / "local-kafka"), "fetch"], check=True, timeout=600)
    broker = LocalBroker(tmp_path / "kafka")
    try:
        yield broker
    finally:
        broker.run("stop")


@kafka
@pytest.mark.broker_restart
def test_feed_survives_no_broker_at_start_and_a_broker_restart(
    own_broker: LocalBroker, settings_for: Callable[..., Settings], feeds: list[Feed]
) -> None:
    settings = settings_for(servers=own_broker.bootstrap)
    feed = fast_feed(settings, 1000)
    feeds.append(feed)
    feed.start()
    down = wait_health(feed, "the down state", lambda h: h.state == "down")
    assert down.message == f"no broker at {own_broker.bootstrap}, retrying"
    assert down.last_error is not None and str(own_broker.port) in down.last_error

    own_broker.run("start")
    create_topic(own_broker.bootstrap, settings.transactions_topic)
    before = produce(
        own_broker.bootstrap, settings.transactions_topic, [(i % 3, event(NOW_MS), NOW_MS) for i in range(30)]
    )
    wait_for("the first messages", lambda: feed.buffer.total_appended == 30, timeout=60)
    assert feed.health().state == "connected"

    own_broker.run("stop")
    wait_health(feed, "the down state after stop", lambda h: h.state == "down")
    own_broker.run("start")
    after = produce(
        own_broker.bootstrap, settings.transactions_topic, [(i % 3, event(NOW_MS), NOW_MS) for i in range(30)]
    )
    wait_for("the messages after the restart", lambda: feed.buffer.total_appended == 60, timeout=60)
    assert rows(feed.buffer) == expected_rows(before + after)
    wait_health(feed, "the connected state again", lambda h: h.state == "connected")
    assert all(t.is_alive() for t in feed._threads)
