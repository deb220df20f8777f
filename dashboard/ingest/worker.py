"""The ingest worker: validate every transaction, write each violation once.

Guarantee: exactly-once. Each batch of consumed messages is handled inside one
Kafka transaction: the error records it produces to darooghe.error_logs and
the consumer group's new offsets (`send_offsets_to_transaction`) commit or
abort together. A worker killed at any moment leaves either the whole batch
(records and offsets) or none of it; its successor re-reads the batch from the
last committed offsets. Readers of the error log must use
`isolation.level=read_committed` to see only committed records.

Consumers in group `darooghe-ingest` split the partitions, so workers scale
out; each holds its own transactional id.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from dashboard.ingest.records import Source, error_records
from dashboard.kafka.admin import ensure_topics
from dashboard.kafka.errors import BrokerState
from dashboard.settings import Settings
from dashboard.validation import check

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
POLL_TIMEOUT = 0.5
REPORT_EVERY = 5.0


@dataclass
class Stats:
    """Counters of one worker run."""

    messages: int = 0
    invalid: int = 0
    records: int = 0
    transactions: int = 0
    aborted: int = 0
    by_code: dict[str, int] = field(default_factory=dict)


def transactional_id(settings: Settings, given: str | None) -> str:
    """Return the producer's transactional id: `given`, or unique per process.

    A stable id (given with --transactional-id) lets a restarted worker fence
    its killed predecessor at once; a unique id is safe for several workers on
    one host, and a dead predecessor's open transaction is then aborted by the
    broker after transaction.timeout.ms.
    """
    return given or f"{settings.ingest_group}-{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class IngestWorker:
    """Consume transactions, validate them, write error records transactionally."""

    def __init__(
        self,
        settings: Settings,
        txn_id: str | None = None,
        until_idle: float | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.txn_id = transactional_id(settings, txn_id)
        self.until_idle = until_idle
        self.stop = stop or threading.Event()
        self.clock = clock
        self.stats = Stats()
        self.state = BrokerState(settings.bootstrap_servers, logger)
        self._assigned = False
        self._last_data = clock()

    # -- wiring ---------------------------------------------------------------
    def _consumer(self) -> Consumer:
        return Consumer(
            self.settings.kafka_config(
                group_id=self.settings.ingest_group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                fetch_min_bytes=1,
                queued_max_messages_kbytes=65536,
                error_cb=self.state.on_error,
            )
        )

    def _producer(self) -> Producer:
        return Producer(
            self.settings.kafka_config(
                transactional_id=self.txn_id,
                transaction_timeout_ms=15000,
                linger_ms=5,
                compression_type="lz4",
                error_cb=self.state.on_error,
            )
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = True
        self._last_data = self.clock()  # idleness counts from the latest assignment
        logger.info("assigned partitions %s", sorted(p.partition for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Transactions never span a consume() call, so nothing is in flight here.
        logger.info("revoked partitions %s", sorted(p.partition for p in partitions))

    def _wait_for_broker(self, action: Callable[[], object], what: str) -> bool:
        """Retry `action` until it succeeds or the worker is stopped; False when stopped."""
        while not self.stop.is_set():
            try:
                action()
                return True
            except KafkaException as exc:
                err = exc.args[0]
                if err.fatal():
                    raise
                logger.warning("%s: %s; retrying", what, err.str())
            except TimeoutError as exc:
                logger.warning("%s: %s; retrying", what, exc)
            self.stop.wait(2.0)
        return False

    # -- main loop ------------------------------------------------------------
    def run(self) -> Stats:
        """Process until stopped (or idle for `until_idle` seconds); return the counters."""
        s = self.settings
        topics = [s.transactions_topic, s.error_topic, s.fraud_topic]
        if not self._wait_for_broker(lambda: ensure_topics(s, topics, timeout=10), "creating topics"):
            return self.stats
        producer = self._producer()
        consumer = self._consumer()
        try:
            if not self._wait_for_broker(lambda: producer.init_transactions(10), "initialising transactions"):
                return self.stats
            consumer.subscribe([s.transactions_topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
            logger.info("ingest worker %s started: %s", self.txn_id, s.describe())
            self._loop(consumer, producer)
        finally:
            consumer.close()
            producer.flush(10)
        return self.stats

    def _loop(self, consumer: Consumer, producer: Producer) -> None:
        last_report, reported = self.clock(), 0
        while not self.stop.is_set():
            msgs = consumer.consume(BATCH_SIZE, POLL_TIMEOUT)
            now = self.clock()
            if msgs:
                self._last_data = now
                self.state.mark_up()
                self._process_batch(consumer, producer, msgs)
            elif self.until_idle is not None and self._assigned and now - self._last_data >= self.until_idle:
                logger.info("idle for %.1f s, stopping", self.until_idle)
                break
            if now - last_report >= REPORT_EVERY:
                rate = (self.stats.messages - reported) / (now - last_report)
                logger.info(
                    "%.0f msg/s; %d messages, %d invalid, %d error records",
                    rate,
                    self.stats.messages,
                    self.stats.invalid,
                    self.stats.records,
                )
                last_report, reported = now, self.stats.messages
        logger.info(
            "stopped: %d messages, %d invalid, %d error records %s",
            self.stats.messages,
            self.stats.invalid,
            self.stats.records,
            self.stats.by_code,
        )

    def _process_batch(self, consumer: Consumer, producer: Producer, msgs: list[Message]) -> None:
        s = self.settings
        skew, error_topic = s.time_skew_ms, s.error_topic
        first: dict[tuple[str, int], int] = {}
        last: dict[tuple[str, int], int] = {}
        stats = self.stats
        produce = producer.produce
        producer.begin_transaction()
        n = invalid = records = 0
        by_code: dict[str, int] = {}
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self.state.on_error(err)
                continue
            # A message without error always has topic, partition and offset.
            topic, partition, offset = cast(str, msg.topic()), cast(int, msg.partition()), cast(int, msg.offset())
            tp = (topic, partition)
            if tp not in first:
                first[tp] = offset
            last[tp] = offset
            n += 1
            ts_type, ts = msg.timestamp()
            if ts_type == 0:  # TIMESTAMP_NOT_AVAILABLE: fall back to our clock
                ts = int(time.time() * 1000)
            checked = check(msg.value(), ts, skew, full=False)
            if checked.valid:
                continue
            invalid += 1
            for key, value in error_records(checked, Source(topic, partition, offset, ts)):
                while True:
                    try:
                        produce(error_topic, value, key)
                        break
                    except BufferError:
                        producer.poll(0.1)
                records += 1
            for code in checked.codes:
                by_code[code] = by_code.get(code, 0) + 1
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
        if self._commit(consumer, producer, offsets):
            stats.messages += n
            stats.invalid += invalid
            stats.records += records
            stats.transactions += 1
            for code, count in by_code.items():
                stats.by_code[code] = stats.by_code.get(code, 0) + count
        else:
            self._rewind(consumer, first)

    def _commit(self, consumer: Consumer, producer: Producer, offsets: list[TopicPartition]) -> bool:
        """Commit the open transaction with `offsets`; False (after an abort) when it must be retried."""
        try:
            if offsets:
                producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
            while True:
                try:
                    producer.commit_transaction(30)
                    return True
                except KafkaException as exc:
                    if not exc.args[0].retriable():
                        raise
                    logger.warning("commit failed (%s), retrying", exc.args[0].str())
        except KafkaException as exc:
            err = exc.args[0]
            if err.fatal() or not err.txn_requires_abort():
                raise
            logger.warning("transaction aborted (%s); re-reading the batch", err.str())
            producer.abort_transaction(30)
            self.stats.aborted += 1
            return False

    def _rewind(self, consumer: Consumer, first: dict[tuple[str, int], int]) -> None:
        for (topic, partition), offset in first.items():
            consumer.seek(TopicPartition(topic, partition, offset))
