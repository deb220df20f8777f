"""The dashboard's history feed: reads darooghe.rollups from its start, then tails it, into `Rollups`.

The ingest workers write per-minute aggregates there (`dashboard.core.rollup`),
exactly once, in their Kafka transactions; this thread reads them with
`read_committed` (aborted runs never show), every partition `assign()`ed
from the beginning, with a throwaway group id and no commits, so it
disturbs nobody and every restart of the dashboard reads the full history
again (the topic is compacted: ROLLUP_DAYS of minutes, not every update).
Partitions are re-listed every `metadata_interval`; a missing topic or an
unreachable broker is retried. At the same pace the topic's id is compared
with the last one seen: a topic deleted and created again (Pulse's flush
mode) clears the history and reads the new topic from its beginning, and
`status()` says so. Never calls `st.*`: pages read `rollups.snapshot()`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from dashboard.core.settings import Settings
from dashboard.feed.viewer import DaemonLoop, viewer_config
from dashboard.kafka.admin import TopicIdentity, admin_client
from dashboard.kafka.broker_state import DOWN_CODES
from dashboard.store.rollups import Rollups

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
POLL_TIMEOUT = 0.5
QUERY_TIMEOUT = 2.0


class RollupFeed(DaemonLoop):
    """Reads the rollups topic into `rollups` on a daemon thread; see the module docstring.

    `caught_up` turns True once a poll after the assignment found nothing
    more to read (the history is loaded); `records` counts values read since
    the last (re)start of the topic; `rebuilds` counts recreations noticed,
    the latest at `rebuilt_at` (epoch seconds of `clock`).
    """

    thread_name = "darooghe-rollups"

    def __init__(
        self,
        settings: Settings,
        rollups: Rollups | None = None,
        clock: Callable[[], float] = time.time,
        *,
        metadata_interval: float = 10.0,
        retry_interval: float = 2.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.rollups = rollups if rollups is not None else Rollups(settings.rollup_days, clock)
        self.clock = clock
        self.rebuilds = 0
        self.rebuilt_at: float | None = None
        self.metadata_interval = metadata_interval
        self.retry_interval = retry_interval
        self.records = 0
        self.caught_up = False

    def _on_error(self, err: KafkaError) -> None:
        if err.code() in DOWN_CODES:
            logger.debug("rollups feed: %s", err.str())
        else:
            logger.warning("rollups feed: %s", err.str())

    def _run(self) -> None:
        topic = self.settings.rollups_topic
        consumer = Consumer(viewer_config(self.settings, "rollups", self._on_error))
        identity = TopicIdentity(admin_client(self.settings, error_cb=self._on_error), topic)
        assigned: set[int] = set()
        try:
            next_meta = 0.0
            while not self._stop.is_set():
                if time.monotonic() >= next_meta:
                    if (change := identity.check(QUERY_TIMEOUT)) is not None:
                        self._restart(consumer, assigned, *change)
                    found = self._assign(consumer, topic, assigned)
                    next_meta = time.monotonic() + (self.metadata_interval if found else self.retry_interval)
                messages = consumer.consume(BATCH_SIZE, POLL_TIMEOUT)
                values = []
                for msg in messages:
                    err = msg.error()
                    if err is None:
                        values.append(msg.value())
                    elif err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                        next_meta = 0.0
                    elif err.code() != KafkaError._PARTITION_EOF:
                        self._on_error(err)
                if values:
                    self.rollups.apply_values(values)
                    self.records += len(values)
                elif assigned and not messages:
                    self.caught_up = True
        except Exception:
            logger.exception("rollups feed crashed; the history charts stop updating")
        finally:
            consumer.close()

    def _restart(self, consumer: Consumer, assigned: set[int], old: str, new: str) -> None:
        """The topic was recreated: forget its history and read the new one from the beginning (next `_assign`)."""
        consumer.unassign()
        assigned.clear()
        self.rollups.clear()
        self.records = 0
        self.caught_up = False
        self.rebuilds += 1
        self.rebuilt_at = self.clock()
        logger.warning(
            "%s was recreated (topic id %s, was %s): history cleared, reading the new topic from its beginning",
            self.settings.rollups_topic,
            new,
            old,
        )

    def status(self) -> str:
        """One line on the history feed for the pages: loading or loaded, and the latest rebuild."""
        topic = self.settings.rollups_topic
        line = f"{topic}: {self.records:,} records read" + ("" if self.caught_up else ", loading")
        if self.rebuilt_at is not None:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.rebuilt_at))
            line += f"; rebuilt from the recreated topic at {when}"
        return line + "."

    def _assign(self, consumer: Consumer, topic: str, assigned: set[int]) -> bool:
        """Assign partitions not assigned yet, from their beginning; False when the topic is missing."""
        try:
            meta = consumer.list_topics(topic, timeout=QUERY_TIMEOUT).topics.get(topic)
        except KafkaException as exc:
            self._on_error(exc.args[0])
            return False
        if meta is None or meta.error is not None or not meta.partitions:
            return False
        new = sorted(set(meta.partitions) - assigned)
        if new:
            consumer.incremental_assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in new])
            assigned.update(new)
            logger.info("reading %s partitions %s from the beginning", topic, new)
        return True
