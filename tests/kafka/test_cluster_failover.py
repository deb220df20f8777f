"""A broker SIGKILLed mid-stream on a three-node cluster: nothing lost, nothing doubled (marker `cluster`).

One cluster of our own (scripts/local-kafka, KAFKA_NODES=3, free ports, tmp
state) serves every test, restored in between (every partition back to 3
in-sync replicas).

First, the librdkafka hang these runs used to catch about one time in three,
made certain: a transactional producer configured as the worker's sends
offsets once, the node coordinating its group is SIGKILLed and drops out of
the producer's metadata (librdkafka 2.16 decommissions it but keeps it cached
as the group coordinator, #5511), and the next send_offsets_to_transaction
must find the new coordinator and commit there, within its timeout plus the
worker's overrun bound (with librdkafka's defaults it blocks for good, its
timeout unchecked, #5456).

Then two runs of the whole pipeline: a 6-partition transactions topic with
replication 3 (TOPIC_REPLICATION_FACTOR=3 via ensure_topics, as the workers
create their output topics), two `python -m dashboard.ingest` workers with
distinct --transactional-id, the dashboard's Feed in-process, and a test
producer at a steady RATE events/s (acks=all, idempotent) of crafted events
whose invalid ones, and so the expected error records, are known exactly.
Mid-stream one node is SIGKILLed and restarted OUTAGE_S later:

1. node 2;
2. the node leading the workers' transaction coordinator: the leader of the
   `__transaction_state` partition `abs(javaHashCode(id)) % partitions` (how
   Kafka places a transactional id; both ids are picked to share it, and the
   test checks that partition was written when the workers started).
   AdminClient.describe_transactions is not in confluent-kafka 2.16.1.

In both runs the workers' consumer group is picked so that the killed node
also leads its `__consumer_offsets` partition: the group coordinator dies too.

Then: the workers' committed offsets reach the end of every partition, the
error log read with read_committed holds every expected record exactly once,
neither worker exited, the feed kept counting during the outage and its
count equals what was produced.

Workers run with --no-fraud: the fraud detectors' exactly-once output is
tested under kill -9 elsewhere (test_fraud_kafka); here the two cores go to
three brokers, two workers, the producer and the feed.
"""

from __future__ import annotations

import collections
import contextlib
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, ElectionType, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from dashboard.core.settings import Settings
from dashboard.feed.transactions import Feed
from dashboard.ingest.worker import IngestWorker
from dashboard.kafka.admin import ensure_topics
from dashboard.store.buffer import RingBuffer
from tests.kafka.kafkatools import ROOT, committed_total, read_all, start_module
from tests.kafka.localkafka import LocalKafka, wait_for
from tests.kafka.test_ingest_kafka import crafted

pytestmark = pytest.mark.cluster

PARTITIONS = 6
RATE = 2500  # events per second
EVENTS = 45_000  # 18 s of stream
KILL_AFTER = 4_000  # events produced before the kill
OUTAGE_S = 25.0  # past the 4-16 s librdkafka can take to find a dead coordinator's successor


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    kafka = LocalKafka(tmp_path_factory.mktemp("cluster") / "kafka", nodes=3)
    try:
        kafka.run("start")
        yield kafka
    finally:
        kafka.run("stop", check=False, timeout=120)


def java_hash(text: str) -> int:
    """Java's String.hashCode of an ASCII string (32-bit overflow)."""
    assert text.isascii()
    h = 0
    for char in text:
        h = (31 * h + ord(char)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def coordinator_partition(key: str, partitions: int) -> int:
    """The partition of Kafka's internal topic that coordinates `key` (a transactional id in
    __transaction_state, a group id in __consumer_offsets): Utils.abs(hashCode) % partitions."""
    h = java_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def internal_topic(admin: AdminClient, bootstrap: str, topic: str) -> Any:
    """Metadata of __transaction_state or __consumer_offsets, created (by a first client that needs it) if need be."""

    def meta() -> Any:
        found = admin.list_topics(timeout=10).topics.get(topic)
        return found if found is not None and found.partitions else None

    if meta() is None:
        if topic == "__transaction_state":
            first = Producer({"bootstrap.servers": bootstrap, "transactional.id": "failover-first", "log_level": 0})
            first.init_transactions(60)
        else:  # a group's first offset lookup creates __consumer_offsets
            first = Consumer({"bootstrap.servers": bootstrap, "group.id": "failover-first", "log_level": 0})
            try:  # the topic is created on this lookup, which may fail while it is (NOT_COORDINATOR)
                with contextlib.suppress(KafkaException):
                    first.committed([TopicPartition("failover-first", 0)], timeout=30)
            finally:
                first.close()
    return wait_for(topic, meta, timeout=30)


def coordinator_of(admin: AdminClient, topic: str, key: str) -> tuple[int, int]:
    """(partition of `topic`, node id leading it) that coordinates `key`."""
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    p = coordinator_partition(key, len(meta.partitions))
    return p, meta.partitions[p].leader


def all_in_sync(admin: AdminClient, nodes: int) -> bool:
    meta = admin.list_topics(timeout=10)
    return len(meta.brokers) == nodes and all(
        len(p.isrs) == len(p.replicas) for t in meta.topics.values() for p in t.partitions.values()
    )


def restored(admin: AdminClient) -> bool:
    """True when every partition has all 3 replicas in sync and is led by its preferred replica.

    Otherwise asks for a preferred-leader election: after a node restarts the
    controller gives its leaderships back only every 5 minutes, and each run
    needs the node it kills to lead partitions of __consumer_offsets.
    """
    if not all_in_sync(admin, 3):
        return False
    meta = admin.list_topics(timeout=10)
    if all(p.leader == p.replicas[0] for t in meta.topics.values() for p in t.partitions.values()):
        return True
    with contextlib.suppress(KafkaException):
        admin.elect_leaders(ElectionType.PREFERRED).result(10)
    return False


class SteadyProducer(threading.Thread):
    """Produce `messages` at RATE per second with acks=all and idempotence; count deliveries and failures."""

    def __init__(self, bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None, int]]) -> None:
        super().__init__(name="steady-producer", daemon=True)
        self.topic, self.messages = topic, messages
        self.sent = self.delivered = 0
        self.failures: list[str] = []
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 180_000,  # ride out leader elections, never give up on a message
                "log_level": 0,
            }
        )

    def _report(self, err: Any, msg: Any) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failures.append(err.str())

    def run(self) -> None:
        started = time.monotonic()
        for i, (key, value, ts) in enumerate(self.messages):
            due = started + i / RATE
            while time.monotonic() < due:
                self.producer.poll(min(0.01, max(0.0, due - time.monotonic())))
            while True:
                try:
                    self.producer.produce(self.topic, value, key, timestamp=ts, on_delivery=self._report)
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.sent += 1
        self.producer.flush(200)


def run_env(cluster: LocalKafka, tag: str, group: str) -> dict[str, str]:
    u = uuid.uuid4().hex[:8]
    env = dict(cluster.env)
    for name in ("KAFKA_NODES", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "KAFKA_HOME", "LOCAL_KAFKA_DIR"):
        env.pop(name, None)  # the script's, not the clients'
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=cluster.bootstrap,
        TRANSACTIONS_TOPIC=f"failover.{tag}.transactions.{u}",
        ERROR_TOPIC=f"failover.{tag}.error_logs.{u}",
        FRAUD_TOPIC=f"failover.{tag}.fraud_alerts.{u}",
        ROLLUPS_TOPIC=f"failover.{tag}.rollups.{u}",
        INGEST_GROUP=group,
        TOPIC_PARTITIONS=str(PARTITIONS),
        TOPIC_REPLICATION_FACTOR="3",
        PYTHONPATH=str(ROOT),
        PYTHONFAULTHANDLER="1",  # a worker stuck in a C call dumps its threads' stacks on SIGABRT
    )
    return env


def txn_ids(admin: AdminClient, tag: str) -> list[str]:
    """Two transactional ids whose coordinator is the same node."""
    by_node: dict[int, list[str]] = collections.defaultdict(list)
    for i in range(200):
        candidate = f"failover-{tag}-{uuid.uuid4().hex[:6]}-{i}"
        _, node = coordinator_of(admin, "__transaction_state", candidate)
        by_node[node].append(candidate)
        if len(by_node[node]) == 2:
            return by_node[node]
    raise AssertionError("no two transactional ids share a coordinator")


def group_led_by(admin: AdminClient, tag: str, node: int) -> str:
    """A consumer group id whose group coordinator is `node`."""
    for i in range(500):
        candidate = f"failover.{tag}.ingest.{uuid.uuid4().hex[:8]}-{i}"
        if coordinator_of(admin, "__consumer_offsets", candidate)[1] == node:
            return candidate
    raise AssertionError(f"no group id whose coordinator is node {node}")


def test_send_offsets_finds_the_group_coordinator_that_replaced_a_removed_one(cluster: LocalKafka) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 0})
    wait_for("every partition in sync, led by its preferred replica", lambda: restored(admin), timeout=90)
    internal_topic(admin, cluster.bootstrap, "__transaction_state")
    internal_topic(admin, cluster.bootstrap, "__consumer_offsets")
    txn = txn_ids(admin, "offsets")[0]
    victim = next(n for n in (1, 2, 3) if n != coordinator_of(admin, "__transaction_state", txn)[1])
    env = run_env(cluster, "offsets", group_led_by(admin, "offsets", victim))
    settings = Settings.from_env(env)
    topic = settings.transactions_topic
    ensure_topics(settings, [topic])
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": settings.ingest_group, "log_level": 0})
    worker = IngestWorker(settings, txn, detect_fraud=False)
    producer = worker._producer()  # the worker's own producer settings and its own way of sending offsets
    group = consumer.consumer_group_metadata()

    def send(offset: int) -> None:
        producer.begin_transaction()
        # Tries within 10 s; ProducerWedged if a call is still blocked OVERRUN_SECONDS past its timeout.
        worker._send_offsets(producer, [TopicPartition(topic, 0, offset)], group, seconds=10.0)
        producer.commit_transaction(30)

    try:
        producer.init_transactions(60)
        send(1)  # the group's coordinator (node `victim`) is now in the producer's coordinator cache
        cluster.run("kill", str(victim))
        wait_for(f"node {victim} gone from the producer's metadata", lambda: victim not in brokers(producer), 60)
        send(2)  # raises ProducerWedged if it is still blocked 10 s past its 10 s timeout
        assert consumer.committed([TopicPartition(topic, 0)], timeout=30)[0].offset == 2
    finally:
        consumer.close()
        cluster.run("start", str(victim))


@pytest.mark.parametrize("victim", ["node 2", "transaction coordinator"])
def test_broker_killed_mid_stream_loses_nothing(cluster: LocalKafka, victim: str, tmp_path: Path) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 0})
    wait_for("every partition in sync, led by its preferred replica", lambda: restored(admin), timeout=90)
    tag = "node2" if victim == "node 2" else "coord"
    internal_topic(admin, cluster.bootstrap, "__transaction_state")
    internal_topic(admin, cluster.bootstrap, "__consumer_offsets")
    ids = txn_ids(admin, tag)
    state_partition, coordinator = coordinator_of(admin, "__transaction_state", ids[0])
    node = 2 if victim == "node 2" else coordinator
    # The workers' group coordinator dies with the node too: their send_offsets_to_transaction
    # must find its successor (librdkafka 2.16 can wait forever for a removed coordinator).
    env = run_env(cluster, tag, group_led_by(admin, tag, node))
    settings = Settings.from_env(env)
    topic, group = settings.transactions_topic, settings.ingest_group
    ensure_topics(settings, [topic])
    wait_for(
        f"{PARTITIONS} partitions of {topic} with 3 replicas each",
        lambda: (
            [len(p.replicas) for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values()]
            == [3] * PARTITIONS
        ),
        timeout=30,
    )
    state_tp = TopicPartition("__transaction_state", state_partition)
    state_before = admin_high(cluster, state_tp)

    rng = random.Random(7)
    crafted_events = [crafted(i, rng) for i in range(EVENTS)]
    messages = [(key, value, ts) for key, value, ts, _ in crafted_events]
    expected = collections.Counter(
        (orjson.loads(value)["transaction_id"], code) for _, value, _, codes in crafted_events for code in codes
    )

    feed = Feed(settings, RingBuffer(EVENTS * 2), metadata_interval=2.0, probe_interval=60.0)
    feed.start()
    logs = [tmp_path / f"worker-{i}.log" for i in (1, 2)]
    workers = [
        start_module("dashboard.ingest", env, "--processes", "1", "--no-fraud", "--transactional-id", txn, log=log)
        for txn, log in zip(ids, logs, strict=True)
    ]
    producer = SteadyProducer(cluster.bootstrap, topic, messages)
    try:
        wait_for(
            "both workers assigned",
            lambda: all("assigned partitions [" in log.read_text() for log in logs),
            timeout=60,
        )
        # The workers' transactional ids registered with the coordinator we computed.
        assert admin_high(cluster, state_tp) > state_before, "the coordinator partition was not written"
        producer.start()
        wait_for("the stream to be under way", lambda: producer.sent >= KILL_AFTER, timeout=30)
        cluster.run("kill", str(node))
        killed_at = time.monotonic()
        at_kill = (producer.sent, feed.health().messages_total)
        assert 0 < at_kill[0] < EVENTS, "the kill did not land mid-stream"
        committed_at_kill = committed(cluster.bootstrap, group, topic)
        while time.monotonic() - killed_at < OUTAGE_S:  # the outage: workers must stay up throughout
            assert all(w.poll() is None for w in workers), "a worker exited during the outage"
            time.sleep(0.5)
        during = (feed.health().messages_total, committed(cluster.bootstrap, group, topic))
        cluster.run("start", str(node))
        producer.join(240)
        assert not producer.is_alive()
        assert producer.failures == [] and producer.delivered == EVENTS, (producer.delivered, producer.failures[:3])

        try:
            wait_for(
                "the workers' committed offsets at the end of every partition",
                lambda: committed(cluster.bootstrap, group, topic) == EVENTS,
                timeout=120,
            )
        except AssertionError:
            stop_workers(workers)  # a worker stuck in a librdkafka call dumps its stack (SIGABRT) into its log
            tails = "\n".join(f"--- {log.name}:\n{log.read_text()[-2500:]}" for log in logs)
            done = committed(cluster.bootstrap, group, topic)
            raise AssertionError(f"committed {done} of {EVENTS}\n{tails}") from None
        wait_for("the feed to count every event", lambda: feed.health().messages_total == EVENTS, timeout=60)
        assert all(w.poll() is None for w in workers), "a worker exited"
    finally:
        feed.stop()
        stop_workers(workers)
    for w, log in zip(workers, logs, strict=True):
        assert w.returncode == 0, log.read_text()[-3000:]
        assert "Traceback" not in log.read_text()

    # Processing and the feed went on while the node was down.
    assert during[0] > at_kill[1], ("the feed stopped counting during the outage", at_kill, during)
    assert during[1] > committed_at_kill, ("no commit during the outage", committed_at_kill, during)
    records = read_all(cluster.bootstrap, settings.error_topic, read_committed=True, idle=5.0)
    got = collections.Counter(
        (r["transaction_id"], r["error_code"]) for r in (orjson.loads(m.value()) for m in records)
    )
    assert got == expected, (sum(got.values()), sum(expected.values()), (got - expected).most_common(3))


def brokers(client: Producer) -> set[int]:
    """Node ids in `client`'s metadata, asked anew (a request to a dead node times out: try again)."""
    try:
        return set(client.list_topics(timeout=5).brokers)
    except KafkaException:
        return {-1}


def admin_high(cluster: LocalKafka, tp: TopicPartition) -> int:
    """High watermark of one partition (a consumer of no group reads it)."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "failover-watermarks", "log_level": 0})
    try:
        return int(consumer.get_watermark_offsets(tp, timeout=10)[1])
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str) -> int:
    """The group's committed total; retried while a dead node's coordinators move (NOT_COORDINATOR, timeouts)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return committed_total(bootstrap, group, topic)
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each worker; one that does not exit within 60 s (stuck in a C call, where Python's signal
    handler cannot run) gets SIGABRT, so faulthandler writes every thread's stack to its log."""
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(60)
        except subprocess.TimeoutExpired:
            w.send_signal(signal.SIGABRT)
            w.wait(10)
