"""The dashboard's fraud-alert tail: one background consumer of darooghe.fraud_alerts per server.

Like the transaction feed it disturbs nobody (assign(), a throwaway group
id, no commits) and reads with isolation.level=read_committed, so it shows
exactly the alerts the ingest worker committed. It starts with the newest
alerts that fit its log, then tails; a missing topic or broker is retried
quietly. It never calls `st.*`.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from dashboard.core.settings import Settings
from dashboard.feed.viewer import DaemonLoop, viewer_config
from dashboard.kafka.admin import TopicIdentity, admin_client
from dashboard.kafka.broker_state import BrokerState
from dashboard.kafka.offsets import backfill_starts
from dashboard.store.alert_log import AlertLog, parse_alert

logger = logging.getLogger(__name__)

METADATA_EVERY = 10.0  # seconds between looks for the topic and new partitions


class AlertFeed(DaemonLoop):
    """Tails the fraud-alert topic into an `AlertLog` on a daemon thread."""

    thread_name = "darooghe-alert-feed"

    def __init__(
        self, settings: Settings, log: AlertLog | None = None, metadata_interval: float = METADATA_EVERY
    ) -> None:
        super().__init__()
        self.settings = settings
        self.metadata_interval = metadata_interval
        self.log = log or AlertLog()
        self.state = BrokerState(settings.bootstrap_servers, logger)
        self._assigned: set[int] = set()

    def _run(self) -> None:
        s = self.settings
        try:
            consumer = Consumer(viewer_config(s, "alerts", self.state.on_error))
        except KafkaException as exc:  # a bad KAFKA_* setting: the transaction feed shows it on the page
            logger.error("fraud alert feed not started: %s", s.mask(exc.args[0].str()))
            return
        # Its errors are the consumer's too: error_cb would report an outage twice.
        admin = admin_client(s, error_cb=lambda err: logger.debug("alert feed admin: %s", err.str()))
        identity = TopicIdentity(admin, s.fraud_topic)
        next_look = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_look:
                    next_look = time.monotonic() + self.metadata_interval
                    if (change := identity.check(2.0)) is not None:
                        self._restart(consumer, *change)
                    self._assign_new(consumer)
                if not self._assigned:
                    self._stop.wait(1.0)
                    continue
                rows = []
                for msg in consumer.consume(500, 0.5):
                    err = msg.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            self.state.on_error(err)
                        continue
                    row = parse_alert(msg.value(), msg.timestamp()[1])
                    if row is not None:
                        rows.append(row)
                if rows:
                    self.state.mark_up()
                    self.log.extend(rows)
        finally:
            consumer.close()

    def _restart(self, consumer: Consumer, old: str, new: str) -> None:
        """The alert topic was recreated (Pulse's flush): drop the alerts shown and read the new topic afresh."""
        consumer.unassign()
        self._assigned.clear()
        self.log.clear()
        logger.warning("%s was recreated (topic id %s, was %s): alerts cleared", self.settings.fraud_topic, new, old)

    def _assign_new(self, consumer: Consumer) -> None:
        """Assign partitions of the alert topic not assigned yet, starting with the newest alerts."""
        topic = self.settings.fraud_topic
        try:
            meta = consumer.list_topics(topic, timeout=2.0).topics.get(topic)
        except KafkaException as exc:
            self.state.on_error(exc.args[0])
            return
        if meta is None or meta.error is not None:
            return
        new = [p for p in meta.partitions if p not in self._assigned]
        if not new:
            return
        try:
            marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=2.0) for p in new}
        except KafkaException as exc:
            self.state.on_error(exc.args[0])
            return
        starts = backfill_starts(marks, max(1, self.log.capacity // max(1, len(meta.partitions))) * len(new))
        consumer.incremental_assign([TopicPartition(topic, p, starts[p]) for p in new])
        self._assigned.update(new)
