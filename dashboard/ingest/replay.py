"""Fraud detector state of the ingest worker: one detector per partition, rebuilt from history.

Transactions are keyed by customer_id, so each partition holds whole
customers and its detector state is local to it. When a worker is assigned a
partition (start, restart, rebalance) or must re-read an aborted transaction,
the partition's detector is rebuilt by replaying its recent history (the
lookback, default 7 days, by Kafka timestamp) up to the offset where
processing resumes, without emitting alerts: those were written, exactly once,
by whoever processed that history. A message it cannot judge (a bug: judging
never raises on bad input) is skipped, with one log line per rebuild.

The rebuild runs inside the worker's assign callback (and after an abort),
where the worker does not poll: its deadline is a third of
max.poll.interval.ms (`rebuild_deadline`), so it never evicts the worker
from its group; a rebuild cut short is logged. Replaying the same input therefore gives
the same alerts, as long as no customer's history reaches further back than
the lookback (the amount rule's averages then start later).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import cast

from confluent_kafka import Consumer, KafkaError, TopicPartition

from dashboard.core.settings import Settings
from dashboard.core.timeunits import DAY_MS
from dashboard.fraud import FraudDetector, Limits
from dashboard.ingest.transform import observe

logger = logging.getLogger(__name__)

DEFAULT_MAX_POLL_INTERVAL_MS = 300_000  # librdkafka's default max.poll.interval.ms


def rebuild_deadline(settings: Settings) -> float:
    """Seconds a rebuild may take: a third of the consumer's max.poll.interval.ms (well under it)."""
    configured = dict(settings.kafka_extra).get("max.poll.interval.ms")
    try:
        interval_ms = int(configured) if configured is not None else DEFAULT_MAX_POLL_INTERVAL_MS
    except ValueError:
        interval_ms = DEFAULT_MAX_POLL_INTERVAL_MS
    return interval_ms / 1000 / 3


class PartitionDetectors:
    """Detectors of the partitions this worker owns, keyed by partition number."""

    def __init__(self, settings: Settings, make: Callable[[], FraudDetector] | None = None) -> None:
        self.settings = settings
        self.make = make or (
            lambda: FraudDetector(
                Limits(
                    min_history=settings.fraud_min_history,
                    # A customer unseen for the lookback is forgotten: a replay after a restart would not see them.
                    amount_idle_ms=int(settings.fraud_lookback_days * DAY_MS),
                    max_customers=settings.fraud_max_customers,
                )
            )
        )
        self.by_partition: dict[int, FraudDetector] = {}

    def get(self, partition: int) -> FraudDetector:
        """Return the partition's detector, empty if it was never built."""
        detector = self.by_partition.get(partition)
        if detector is None:
            detector = self.by_partition[partition] = self.make()
        return detector

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget the state of partitions this worker no longer owns."""
        for p in partitions:
            self.by_partition.pop(p, None)

    def rebuild(self, resume_at: dict[int, int], now_ms: int | None = None) -> None:
        """Replace each partition's detector by one fed its history before `resume_at[partition]`.

        A negative resume offset (nothing committed yet) means processing
        starts at the beginning: the detector starts empty.
        """
        s = self.settings
        topic = s.transactions_topic
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        todo = {p: o for p, o in resume_at.items() if o > 0}
        for p in resume_at:
            self.by_partition[p] = self.make()
        if not todo:
            return
        consumer = Consumer(
            s.kafka_config(
                group_id=f"darooghe-ingest-rebuild-{uuid.uuid4().hex[:8]}",
                enable_auto_commit=False,
                allow_auto_create_topics=False,
                enable_partition_eof=True,
            )
        )
        started = time.monotonic()
        replayed = skipped = 0
        first_skipped: tuple[int, int, str] | None = None
        try:
            since = now_ms - int(s.fraud_lookback_days * DAY_MS)
            starts = consumer.offsets_for_times([TopicPartition(topic, p, since) for p in todo], timeout=30)
            # The first offset at or after `since`; negative when no message is that recent.
            assign = [
                TopicPartition(topic, tp.partition, tp.offset) for tp in starts if 0 <= tp.offset < todo[tp.partition]
            ]
            consumer.assign(assign)
            remaining = {tp.partition for tp in assign}
            skew = s.time_skew_ms
            deadline = started + rebuild_deadline(s)
            while remaining and time.monotonic() < deadline:
                for msg in consumer.consume(5000, 1.0):
                    p = cast(int, msg.partition())
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            remaining.discard(p)
                        continue
                    offset = cast(int, msg.offset())
                    if p not in remaining:
                        continue
                    if offset >= todo[p]:
                        remaining.discard(p)
                        continue
                    try:
                        observe(self.by_partition[p], msg.value(), msg.timestamp()[1], skew)
                        replayed += 1
                    except Exception as exc:  # a bug: skip the message, say so once below
                        skipped += 1
                        if first_skipped is None:
                            first_skipped = (p, offset, f"{type(exc).__name__}: {exc}"[:200])
                    if offset + 1 >= todo[p]:
                        remaining.discard(p)
            if remaining:
                logger.warning("fraud state of partitions %s rebuilt only partly (deadline)", sorted(remaining))
            if first_skipped is not None:
                sp, so, text = first_skipped
                logger.warning(
                    "fraud state rebuild skipped %d messages it could not judge, the first at %s [%d] offset %d (%s)",
                    skipped,
                    topic,
                    sp,
                    so,
                    text,
                )
        finally:
            consumer.close()
        logger.info(
            "rebuilt fraud state of partitions %s from %d messages in %.1f s",
            sorted(todo),
            replayed,
            time.monotonic() - started,
        )
