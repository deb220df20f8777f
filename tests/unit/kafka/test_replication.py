"""Replication settings against what the cluster reports: one readable line when it cannot satisfy them."""

from __future__ import annotations

from confluent_kafka.admin import BrokerMetadata, ClusterMetadata, PartitionMetadata, TopicMetadata

from dashboard.core.settings import Settings
from dashboard.kafka.admin import replication_problem, topic_config


def cluster(brokers: int, isrs: dict[str, list[int]]) -> ClusterMetadata:
    """Metadata of `brokers` brokers and topics whose partitions have the given ISR sizes (3 replicas each)."""
    meta = ClusterMetadata()
    for i in range(1, brokers + 1):
        broker = BrokerMetadata()
        broker.id, broker.host, broker.port = i, "localhost", 9091 + i
        meta.brokers[i] = broker
    for name, sizes in isrs.items():
        topic = TopicMetadata()
        topic.topic = name
        for p, size in enumerate(sizes):
            part = PartitionMetadata()
            part.id, part.leader, part.replicas, part.isrs = p, 1, [1, 2, 3], list(range(1, size + 1))
            topic.partitions[p] = part
        meta.topics[name] = topic
    return meta


def test_topics_we_create_carry_min_insync_replicas() -> None:
    s3 = Settings.from_env({"TOPIC_REPLICATION_FACTOR": "3"})
    assert topic_config(s3, s3.transactions_topic)["min.insync.replicas"] == "2"
    assert topic_config(s3, s3.rollups_topic)["min.insync.replicas"] == "2"
    assert topic_config(s3, s3.rollups_topic)["cleanup.policy"] == "compact,delete"
    s1 = Settings.from_env({})
    assert topic_config(s1, s1.error_topic) == {"retention.ms": str(30 * 86_400_000), "min.insync.replicas": "1"}


def test_too_few_brokers_for_the_replication_factor() -> None:
    s = Settings.from_env({"TOPIC_REPLICATION_FACTOR": "3", "KAFKA_BOOTSTRAP_SERVERS": "k:9092"})
    assert (
        replication_problem(s, cluster(1, {})) == "TOPIC_REPLICATION_FACTOR=3 cannot be met: 1 broker(s) up at k:9092"
    )
    assert replication_problem(s, cluster(3, {})) is None
    assert replication_problem(Settings.from_env({}), cluster(1, {})) is None


def test_partitions_below_min_insync_refuse_writes() -> None:
    s = Settings.from_env({"TOPIC_REPLICATION_FACTOR": "3"})
    meta = cluster(3, {"tx": [3, 1, 2, 1], "other": [1]})
    problem = replication_problem(s, meta, ["tx", "missing"])
    assert problem is not None and problem.startswith("writes refused: 2 of 4 partitions of tx have fewer than 2")
    assert replication_problem(s, cluster(3, {"tx": [2, 2, 3]}), ["tx"]) is None  # under-replicated, still writable
