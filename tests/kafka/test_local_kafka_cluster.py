"""scripts/local-kafka KAFKA_NODES=3: a real three-node KRaft cluster survives a SIGKILLed node.

Starts its own cluster on free ports in a tmp LOCAL_KAFKA_DIR (the shared
broker is never touched): status lines, a topic with replication 3 and
min.insync.replicas 2, `kill 2`, acks=all produce still succeeding on the two
survivors, `start 2`, every partition's ISR back to 3 replicas, `stop`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.kafka.localkafka import LocalKafka, wait_for

pytestmark = pytest.mark.cluster

TOPIC = "cluster.test"
PARTITIONS = 6


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalKafka]:
    kafka = LocalKafka(tmp_path / "kafka", nodes=3)
    try:
        yield kafka
    finally:
        kafka.run("stop", check=False, timeout=120)


def isr_sizes(admin: AdminClient) -> list[int]:
    topic = admin.list_topics(TOPIC, timeout=10).topics[TOPIC]
    return [len(p.isrs) for _, p in sorted(topic.partitions.items())]


def produce_all(bootstrap: str, start: int, count: int) -> None:
    """Produce `count` numbered messages with acks=all (idempotent); every one must be acknowledged."""
    failures: list[object] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 60000,
            "log_level": 0,
        }
    )
    for i in range(start, start + count):
        producer.produce(
            TOPIC, key=str(i).encode(), value=str(i).encode(), on_delivery=lambda e, m: e and failures.append(e)
        )
        producer.poll(0)
    assert producer.flush(70) == 0, "messages left undelivered"
    assert not failures, failures[:3]


def read_values(bootstrap: str) -> list[int]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "cluster-test-reader", "enable.auto.commit": False, "log_level": 0}
    )
    try:
        admin_topic = consumer.list_topics(TOPIC, timeout=10).topics[TOPIC]
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in admin_topic.partitions
        }
        consumer.assign([TopicPartition(TOPIC, p, 0) for p in ends])
        values: list[int] = []
        done: set[int] = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + 30
        while len(done) < len(ends) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            values.append(int(msg.value()))
            if msg.offset() + 1 >= ends[msg.partition()]:
                done.add(msg.partition())
        return values
    finally:
        consumer.close()


def test_three_node_cluster_survives_a_killed_node(cluster: LocalKafka) -> None:
    started = cluster.run("start")
    assert "ready: 3-node Kafka cluster" in started.stdout, started.stdout
    rc, lines = cluster.status()
    assert rc == 0, lines
    for i, port in enumerate(cluster.ports, start=1):
        assert re.match(rf"node {i} localhost:{port} running\b", lines[i - 1]), lines

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "log_level": 0})
    assert len(admin.list_topics(timeout=10).brokers) == 3
    futures = admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"})])
    futures[TOPIC].result(30)
    wait_for("ISR of 3 on every partition", lambda: isr_sizes(admin) == [3] * PARTITIONS, timeout=30)
    produce_all(cluster.bootstrap, 0, 500)

    killed = cluster.run("kill", "2")
    assert "killed node 2" in killed.stdout
    rc, lines = cluster.status()
    assert rc == 4, lines
    assert lines[1] == f"node 2 localhost:{cluster.ports[1]} not running", lines
    assert " running" in lines[0] and " running" in lines[2], lines

    # Two in-sync replicas are left, min.insync.replicas is 2: acks=all still succeeds.
    produce_all(cluster.bootstrap, 500, 500)
    wait_for("node 2 out of every ISR", lambda: isr_sizes(admin) == [2] * PARTITIONS, timeout=30)

    cluster.run("start", "2")
    rc, lines = cluster.status()
    assert rc == 0, lines
    wait_for("node 2 back in every ISR", lambda: isr_sizes(admin) == [3] * PARTITIONS, timeout=60)

    assert sorted(read_values(cluster.bootstrap)) == list(range(1000))

    cluster.run("stop")
    rc, lines = cluster.status()
    assert rc == 3, lines
    assert all(line.endswith(" not running") for line in lines), lines
