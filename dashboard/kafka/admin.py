"""Topic administration: create missing topics, delete topics, count messages, flush the pipeline, topic ids.

A transient broker error (a leader moving right after a topic was created, a
coordinator still loading, a timeout) never fails these helpers: they retry
retriable errors (`TRANSIENT_CODES`, or any error librdkafka marks retriable)
until their timeout runs out, then raise the last one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic

from dashboard.core.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

# Time-based retention judges Kafka timestamps, and backfilled history carries
# event times days old: topics we create keep 30 days, so history survives.
RETENTION_MS = 30 * 86_400_000
# Topic-creation refusals that no retry will cure: the settings ask what the cluster cannot give.
_REFUSED = {KafkaError.INVALID_REPLICATION_FACTOR, KafkaError.INVALID_CONFIG, KafkaError.POLICY_VIOLATION}


class ClusterError(SettingsError):
    """The cluster cannot hold topics as the settings ask (say, replication 3 on one broker); str() is one line."""


def topic_config(settings: Settings, topic: str) -> dict[str, str]:
    """Return the config of a topic we create: TOPIC_MIN_INSYNC_REPLICAS, and 30 days' retention
    (the rollups topic: `rollups_topic_config`)."""
    if topic == settings.rollups_topic:
        return {**rollups_topic_config(settings), "min.insync.replicas": str(settings.min_insync)}
    return {"retention.ms": str(RETENTION_MS), "min.insync.replicas": str(settings.min_insync)}


def replication_problem(settings: Settings, metadata: ClusterMetadata, topics: Iterable[str] = ()) -> str | None:
    """Return one line when the cluster cannot give `topics` the configured durability, None when it can.

    Too few brokers up for TOPIC_REPLICATION_FACTOR, or partitions of
    `topics` with fewer in-sync replicas than TOPIC_MIN_INSYNC_REPLICAS (so
    acks=all producers are refused).
    """
    brokers, wanted = len(metadata.brokers), settings.topic_replication
    if brokers < wanted:
        return (
            f"TOPIC_REPLICATION_FACTOR={wanted} cannot be met: {brokers} broker(s) up at {settings.bootstrap_servers}"
        )
    short = []
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None:
            continue
        n = sum(1 for p in meta.partitions.values() if len(p.isrs) < min(settings.min_insync, len(p.replicas)))
        if n:
            short.append(f"{n} of {len(meta.partitions)} partitions of {topic}")
    if short:
        return (
            f"writes refused: {', '.join(short)} have fewer than {settings.min_insync} in-sync replicas"
            " (TOPIC_MIN_INSYNC_REPLICAS); brokers are down or catching up"
        )
    return None


#: Errors that say "ask again shortly", whether or not librdkafka flags them retriable.
TRANSIENT_CODES = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError.UNKNOWN_TOPIC_OR_PART,  # metadata not yet propagated after a create
    }
)

T = TypeVar("T")


def transient(exc: BaseException) -> bool:
    """True when `exc` is a broker error worth retrying (see TRANSIENT_CODES), or a TimeoutError."""
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        err = exc.args[0]
        return not err.fatal() and (err.retriable() or err.code() in TRANSIENT_CODES)
    return False


def retrying(
    call: Callable[[], T],
    what: str,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Return `call()`, retrying transient errors with backoff for up to `timeout` s; then raise the last one."""
    deadline = clock() + timeout
    backoff = 0.1
    while True:
        try:
            return call()
        except (KafkaException, TimeoutError) as exc:
            if not transient(exc) or clock() + backoff > deadline:
                raise
            logger.info("%s: %s; retrying", what, exc)
            sleep(backoff)
            backoff = min(backoff * 2, 1.0)


def admin_client(settings: Settings, **extra: Any) -> AdminClient:
    """Return an AdminClient for the configured cluster (`extra`: more client settings, e.g. error_cb)."""
    return AdminClient(settings.kafka_config(**extra))


def rollups_topic_config(settings: Settings) -> dict[str, str]:
    """Config of the per-minute aggregates topic: compacted (latest value per run) and deleted after ROLLUP_DAYS + 1.

    Hour-long segments let the cleaner compact all but the latest hour of
    updates; record timestamps are the minute's end (at most now), so time
    retention ages records by event time.
    """
    return {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(int((settings.rollup_days + 1) * 86_400_000)),
        "segment.ms": "3600000",
        "min.cleanable.dirty.ratio": "0.5",
    }


def ensure_topics(
    settings: Settings, topics: Iterable[str], partitions: int | None = None, timeout: float = 30.0
) -> list[str]:
    """Create those of `topics` that do not exist yet; return the names created.

    Each gets TOPIC_REPLICATION_FACTOR replicas and `topic_config` (raises
    ClusterError, one line, when the cluster cannot hold them). Waits until the broker reports every topic with
    its leaders, so producers and consumers started right after see them.
    Transient errors are retried for up to `timeout` s.
    """
    wanted = list(dict.fromkeys(topics))
    created: list[str] = []
    retrying(lambda: created.extend(_ensure_topics(settings, wanted, partitions, timeout)), "creating topics", timeout)
    return created


def _ensure_topics(settings: Settings, wanted: list[str], partitions: int | None, timeout: float) -> list[str]:
    admin = admin_client(settings)
    metadata = admin.list_topics(timeout=timeout)
    _warn_thin(settings, metadata, wanted)
    missing = [t for t in wanted if t not in metadata.topics]
    created: list[str] = []
    if missing:
        problem = replication_problem(settings, metadata)
        if problem is not None:
            raise ClusterError(f"cannot create {', '.join(missing)}: {problem}")
        n = partitions or settings.topic_partitions
        replicas = settings.topic_replication
        futures = admin.create_topics(
            [
                NewTopic(t, num_partitions=n, replication_factor=replicas, config=topic_config(settings, t))
                for t in missing
            ]
        )
        for topic, future in futures.items():
            try:
                future.result(timeout)
                created.append(topic)
                logger.info(
                    "created topic %s: %d partitions, replication %d, min.insync.replicas %d",
                    topic,
                    n,
                    replicas,
                    settings.min_insync,
                )
            except KafkaException as exc:
                err = exc.args[0]
                if err.code() in _REFUSED:
                    raise ClusterError(f"cannot create topic {topic}: {err.str()}") from None
                if err.code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    _wait_for(admin, wanted, present=True, timeout=timeout)
    return created


def _warn_thin(settings: Settings, metadata: ClusterMetadata, topics: list[str]) -> None:
    """Log a warning for each of `topics` that exists with fewer replicas than TOPIC_REPLICATION_FACTOR."""
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            continue
        replicas = min(len(p.replicas) for p in meta.partitions.values())
        if replicas < settings.topic_replication:
            logger.warning(
                "topic %s exists with replication %d, below TOPIC_REPLICATION_FACTOR=%d (not changed)",
                topic,
                replicas,
                settings.topic_replication,
            )


def delete_topics(settings: Settings, topics: Iterable[str], timeout: float = 30.0) -> None:
    """Delete `topics` if they exist and wait until the broker no longer lists them."""
    admin = admin_client(settings)
    names = [t for t in topics if t in admin.list_topics(timeout=timeout).topics]
    if not names:
        return
    for topic, future in admin.delete_topics(names, operation_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
        logger.info("deleted topic %s", topic)
    _wait_for(admin, names, present=False, timeout=timeout)


def _wait_for(admin: AdminClient, topics: list[str], present: bool, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        listed = admin.list_topics(timeout=timeout).topics
        ok = all(
            (t in listed and listed[t].error is None and listed[t].partitions) if present else t not in listed
            for t in topics
        )
        if ok:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {topics} not {'ready' if present else 'gone'} after {timeout:.0f} s")
        time.sleep(0.1)


def watermarks(settings: Settings, topic: str, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
    """Return {partition: (low, high)} watermarks of `topic` ({} if it does not exist).

    Transient errors (a leader not yet elected after the topic was created,
    say) are retried for up to `timeout` s.
    """
    consumer = Consumer(settings.kafka_config(group_id="darooghe-watermarks", enable_auto_commit=False))
    try:
        return retrying(lambda: _watermarks(consumer, topic, timeout), f"watermarks of {topic}", timeout)
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, topic: str, timeout: float) -> dict[int, tuple[int, int]]:
    meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if meta is None or meta.error is not None:
        if meta is not None and meta.error is not None and transient(KafkaException(meta.error)):
            raise KafkaException(meta.error)  # e.g. LEADER_NOT_AVAILABLE right after creation: ask again
        return {}
    marks = {}
    for p, part in meta.partitions.items():
        if part.error is not None:
            raise KafkaException(part.error)
        marks[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
    return marks


def message_count(settings: Settings, topic: str, timeout: float = 10.0) -> int:
    """Return high minus low watermark summed over partitions (transaction markers included)."""
    return sum(high - low for low, high in watermarks(settings, topic, timeout).values())


def pipeline_topics(settings: Settings) -> list[str]:
    """The stream and every topic derived from it: transactions, error logs, fraud alerts, rollups.

    The ingest workers read the first and write the others (and create them
    all at start); Pulse's flush mode empties them all (`flush_pipeline`).
    """
    return [settings.transactions_topic, settings.error_topic, settings.fraud_topic, settings.rollups_topic]


def flush_pipeline(settings: Settings, timeout: float = 30.0) -> str:
    """Delete the transactions topic and everything derived from it, recreate them empty; return one line saying so.

    The derived topics go too (rollups, error logs, fraud alerts): they
    describe messages that no longer exist, and the ingest workers derive them
    again from the new stream, so keeping them would count the old history on
    top of the new. The transactions topic goes first, so no new input
    reaches a running worker meanwhile. Kafka drops the ingest group's
    committed offsets with the deleted topic; offsets a running worker
    committed in the moment between (stale on the new topic) are reset to
    its beginning when the group is empty, else named in a warning.
    """
    topics = pipeline_topics(settings)
    present = admin_client(settings).list_topics(timeout=timeout).topics
    counts = {t: message_count(settings, t, timeout) if t in present else 0 for t in topics}
    delete_topics(settings, topics[:1], timeout)
    delete_topics(settings, topics[1:], timeout)
    ensure_topics(settings, topics, timeout=timeout)
    stale = _reset_stale_offsets(settings, timeout)
    held = ", ".join(f"{t} ({counts[t]:,} messages)" for t in topics)  # markers counted too
    line = f"flush: deleted and recreated empty {held}"
    if stale is None:
        line += f"; group {settings.ingest_group} has no committed offsets on the new topic"
    else:
        line += f"; {stale}"
    return line


def _reset_stale_offsets(settings: Settings, timeout: float) -> str | None:
    """Reset the ingest group's offsets on the (new, empty) transactions topic to 0; None when it had none.

    Returns what was done, as a clause of the flush's log line. A group with
    members refuses an outsider's commit: then its running worker keeps its
    own positions (it notices the new topic by offsets going back).
    """
    topic = settings.transactions_topic
    consumer = Consumer(settings.kafka_config(group_id=settings.ingest_group, enable_auto_commit=False))
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        parts = [TopicPartition(topic, p) for p in sorted(meta.partitions)] if meta is not None else []
        committed = [tp for tp in consumer.committed(parts, timeout=timeout) if tp.offset > 0] if parts else []
        if not committed:
            return None
        try:
            consumer.commit(offsets=[TopicPartition(topic, tp.partition, 0) for tp in committed], asynchronous=False)
        except KafkaException as exc:
            logger.warning(
                "group %s committed offsets on the recreated %s while the flush ran and could not be reset (%s);"
                " restart its workers if they skip the new history",
                settings.ingest_group,
                topic,
                exc.args[0].str(),
            )
            return f"stale offsets of group {settings.ingest_group} NOT reset (see the warning)"
        return f"reset {len(committed)} stale committed offsets of group {settings.ingest_group} to 0"
    finally:
        consumer.close()


def topic_id(admin: AdminClient, topic: str, timeout: float = 2.0) -> str | None:
    """Return the topic's id (it changes when the topic is deleted and created again), None when it does not exist.

    Raises KafkaException when the broker does not answer.
    """
    try:
        return str(
            admin.describe_topics(TopicCollection([topic]), request_timeout=timeout)[topic].result(timeout).topic_id
        )
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return None
        raise


class TopicIdentity:
    """Watches one topic's id, so a reader notices the topic deleted and created again (same name, new id).

    `check()` returns (old id, new id) when the id changed since the last
    check that saw the topic, else None (also while the topic is missing or
    the broker does not answer: nothing is concluded then).
    """

    def __init__(self, admin: AdminClient, topic: str) -> None:
        self.admin, self.topic = admin, topic
        self.current: str | None = None

    def check(self, timeout: float = 2.0) -> tuple[str, str] | None:
        """Return (old id, new id) when the topic was recreated since the last look, else None."""
        try:
            now = topic_id(self.admin, self.topic, timeout)
        except KafkaException:
            return None
        if now is None:
            return None
        old, self.current = self.current, now
        return (old, now) if old is not None and old != now else None
