"""The slower broker queries behind the health panel: the ingest worker's committed lag, the error log's size.

The feed runs them in a thread of their own, so they never hold up consumption.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from dashboard.core.settings import Settings
from dashboard.feed.status import Pipeline
from dashboard.feed.viewer import viewer_config
from dashboard.kafka.admin import replication_problem

logger = logging.getLogger(__name__)
T = TypeVar("T")


class PipelineProbe:
    """Slow broker queries for the health panel; every method returns None on failure.

    Joins no group and commits nothing: the ingest group's offsets are read
    by a consumer of that group id that never subscribes, and the error log is counted by a consumer with a
    throwaway group id that only uses `assign()`. Not thread-safe: one thread
    owns a probe.
    """

    def __init__(self, settings: Settings, error_cb: Callable[[KafkaError], None], timeout: float = 2.0) -> None:
        self.settings = settings
        self.timeout = timeout
        common: dict[str, Any] = {"allow_auto_create_topics": False, "error_cb": error_cb}
        # A metadata request for a missing topic would create it otherwise.
        self._admin = AdminClient(settings.kafka_config(**common))
        # It only counts: a small prefetch will do.
        self._counter = Consumer(viewer_config(settings, "count", error_cb, queued_max_messages_kbytes=4096))
        # read_uncommitted: the offset fetch then answers with the last committed offsets at once.
        # read_committed makes it wait for offsets pending in an open transaction (KIP-447's
        # require_stable): after a worker dies mid-commit, until the broker aborts that transaction.
        self._group_reader = Consumer(
            settings.kafka_config(
                group_id=settings.ingest_group, enable_auto_commit=False, isolation_level="read_uncommitted", **common
            )
        )
        self._from: dict[int, int] = {}  # offset the count of a partition starts at
        self._counted: dict[int, int] = {}  # records counted per partition
        self._caught_up = False

    def close(self) -> None:
        """Close the consumers."""
        self._counter.close()
        self._group_reader.close()

    def _partitions(self, topic: str) -> list[int] | None:
        meta = self._admin.list_topics(topic, timeout=self.timeout).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return None
        return sorted(meta.partitions)

    def _offsets(
        self, topic: str, partitions: list[int], spec: OffsetSpec, committed_only: bool = False
    ) -> dict[int, int]:
        isolation = IsolationLevel.READ_COMMITTED if committed_only else IsolationLevel.READ_UNCOMMITTED
        futures = self._admin.list_offsets(
            {TopicPartition(topic, p): spec for p in partitions},
            isolation_level=isolation,
            request_timeout=self.timeout,
        )
        return {tp.partition: f.result(self.timeout + 1).offset for tp, f in futures.items()}

    def _extent(self, topic: str, committed_only: bool = False) -> tuple[list[int], dict[int, int], dict[int, int]]:
        """Return (partitions, low watermarks, high watermarks) of `topic`; no partitions when it is missing.

        With `committed_only` the high end is the last stable offset (what read_committed can reach).
        """
        partitions = self._partitions(topic)
        if partitions is None:
            return [], {}, {}
        lows = self._offsets(topic, partitions, OffsetSpec.earliest())
        return partitions, lows, self._offsets(topic, partitions, OffsetSpec.latest(), committed_only)

    def _query(self, what: str, query: Callable[[], T]) -> T | None:
        """Return `query()`, or None (logged at debug level) when the broker does not answer in time."""
        try:
            return query()
        except (KafkaException, TimeoutError) as exc:
            logger.debug("%s failed: %s", what, exc)
            return None

    def figures(self, budget: float = 1.0) -> Pipeline:
        """Return what every query finds now (`budget`: seconds the error log count may read)."""
        lag, errors, cluster = self.ingest_lag(), self.error_records(budget), self.cluster()
        brokers, problem = cluster if cluster is not None else (None, None)
        return Pipeline(lag, errors, brokers, problem)

    def cluster(self) -> tuple[int, str | None] | None:
        """Return (brokers up, replication problem or None) for our three topics; None when no answer."""
        return self._query("cluster query", self._cluster)

    def _cluster(self) -> tuple[int, str | None]:
        s = self.settings
        metadata = self._admin.list_topics(timeout=self.timeout)
        topics = (s.transactions_topic, s.error_topic, s.fraud_topic)
        return len(metadata.brokers), replication_problem(s, metadata, topics)

    def ingest_lag(self) -> int | None:
        """Return the ingest group's lag on the transactions topic: sum of high watermark minus committed.

        A partition the group never committed counts in full (high minus low):
        the worker starts such partitions from the earliest offset. None when
        the topic is missing or the broker does not answer.
        """
        return self._query("ingest lag query", self._ingest_lag)

    def _ingest_lag(self) -> int | None:
        topic = self.settings.transactions_topic
        partitions, lows, highs = self._extent(topic)
        if not partitions:
            return None
        # committed() of a consumer that never subscribes joins no group. (The
        # AdminClient's list_consumer_group_offsets crashed librdkafka 2.16.1 in
        # its main thread on a freshly formatted broker, while the group
        # coordinator was still loading.)
        result = self._group_reader.committed([TopicPartition(topic, p) for p in partitions], self.timeout)
        committed = {tp.partition: tp.offset for tp in result if tp.error is None}
        lag = 0
        for p in partitions:
            done = committed.get(p, -1)
            lag += max(0, highs[p] - (done if done >= 0 else lows[p]))
        return lag

    def error_records(self, budget: float = 1.0) -> int | None:
        """Return the number of committed records in the error topic, counted by reading them.

        High minus low watermark would overcount: every Kafka transaction of
        the ingest worker leaves a commit marker that takes an offset, and
        aborted records take offsets too. So the records are read (values
        ignored, read_committed) and counted, incrementally: each call reads
        what arrived since the last one, for at most `budget` seconds. Returns
        None until the count has first caught up with the end of the log. When
        retention deletes old records (the low watermark passes where the
        count began) that partition is counted again from its new start.
        """
        return self._query("error log count", lambda: self._count_errors(budget))

    def _count_errors(self, budget: float) -> int | None:
        topic = self.settings.error_topic
        partitions, lows, ends = self._extent(topic, committed_only=True)
        if not partitions:
            return None
        self._reassign(topic, partitions, lows, ends)
        deadline = time.monotonic() + budget
        while time.monotonic() < deadline:
            messages = self._counter.consume(10_000, 0.1)
            for msg in messages:
                p = msg.partition()
                if msg.error() is None and p is not None:
                    self._counted[p] = self._counted.get(p, 0) + 1
            if not messages and self._at_end(topic, partitions, ends):
                self._caught_up = True
                break
        return sum(self._counted.values()) if self._caught_up else None

    def _reassign(self, topic: str, partitions: list[int], lows: dict[int, int], ends: dict[int, int]) -> None:
        """(Re)assign the error topic; restart the count of partitions that are new, trimmed or recreated."""
        positions = self._positions(topic, list(self._from))
        changed = set(self._from) != set(partitions)
        for p in partitions:
            pos = positions.get(p, -1)
            if p not in self._from or lows[p] > self._from[p] or pos > ends[p]:
                self._from[p], self._counted[p] = lows[p], 0
                positions[p] = -1
                changed = True
        for p in set(self._from) - set(partitions):
            del self._from[p], self._counted[p]
        if changed:
            # Partitions never read from resume where their count began.
            self._counter.assign(
                [
                    TopicPartition(topic, p, positions[p] if positions.get(p, -1) >= 0 else self._from[p])
                    for p in partitions
                ]
            )

    def _positions(self, topic: str, partitions: list[int]) -> dict[int, int]:
        if not partitions:
            return {}
        return {
            tp.partition: tp.offset for tp in self._counter.position([TopicPartition(topic, p) for p in partitions])
        }

    def _at_end(self, topic: str, partitions: list[int], ends: dict[int, int]) -> bool:
        positions = self._positions(topic, partitions)
        return all(positions.get(p, -1) >= ends[p] or ends[p] == self._from[p] for p in partitions)
