"""The ingest worker: validate every transaction, write each violation and fraud signal once.

Guarantee: exactly-once. Consumed messages are handled in Kafka transactions
of at most TXN_MAX_SECONDS or TXN_MAX_MESSAGES: the error records produced to
darooghe.error_logs, the fraud alerts produced to darooghe.fraud_alerts, and
the per-minute aggregates produced to darooghe.rollups
(`dashboard.store.aggregate`), and the consumer group's new offsets
(`send_offsets_to_transaction`) commit or abort together. A worker killed at
any moment leaves either a whole transaction (records and offsets) or none of
it; its successor re-reads from the last committed offsets. On a rebalance
the open transaction is committed in the revoke callback, before the
partitions move. Readers of the error log must use
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

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from dashboard.core.settings import Settings
from dashboard.ingest.replay import PartitionDetectors
from dashboard.ingest.transform import Source, error_records, observe
from dashboard.kafka.admin import ensure_topics
from dashboard.kafka.broker_state import BrokerState
from dashboard.store.aggregate import MinuteAggregator

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
POLL_TIMEOUT = 0.5
REPORT_EVERY = 5.0
TXN_MAX_SECONDS = 0.5  # a transaction spans consume() calls for at most this long...
TXN_MAX_MESSAGES = 50_000  # ...or this many messages: commits cost ~10 ms each


@dataclass
class Counts:
    """What was processed: messages, invalid ones, records written, by error code."""

    messages: int = 0
    invalid: int = 0
    records: int = 0
    alerts: int = 0
    by_code: dict[str, int] = field(default_factory=dict)

    def merge(self, other: Counts) -> None:
        """Add `other`'s counts to these."""
        self.messages += other.messages
        self.invalid += other.invalid
        self.records += other.records
        self.alerts += other.alerts
        for code, count in other.by_code.items():
            self.by_code[code] = self.by_code.get(code, 0) + count


@dataclass
class _OpenTxn(Counts):
    """What the open transaction holds: offsets read and counts, merged into Stats on commit."""

    started: float = 0.0
    last: dict[int, int] = field(default_factory=dict)  # partition -> last offset read


@dataclass
class Stats(Counts):
    """Counters of one worker run (committed work only)."""

    transactions: int = 0
    aborted: int = 0
    first_batch_at: float | None = None  # clock() when the first batch arrived
    last_commit_at: float | None = None  # clock() when the latest batch committed

    def rate(self) -> float:
        """Messages per second from the first batch to the latest commit (0 when unknown)."""
        if self.first_batch_at is None or self.last_commit_at is None or self.last_commit_at <= self.first_batch_at:
            return 0.0
        return self.messages / (self.last_commit_at - self.first_batch_at)


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
        detect_fraud: bool = True,
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
        self._open: _OpenTxn | None = None
        self._producer_ref: Producer | None = None
        self.detect_fraud = detect_fraud
        self.detectors = PartitionDetectors(settings)
        self.rollup = MinuteAggregator()  # per-minute aggregates of the open transaction's partitions

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
        logger.info("assigned partitions %s", sorted(p.partition for p in partitions))
        if partitions and self.detect_fraud:
            committed = consumer.committed(partitions, timeout=30)
            self.detectors.rebuild({tp.partition: tp.offset for tp in committed})
        self._last_data = self.clock()  # idleness counts from the latest assignment

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Still a member of the old generation: commit the open transaction now,
        # so the next owner of these partitions starts right after it.
        if self._open is not None and self._producer_ref is not None:
            self._finish(consumer, self._producer_ref, rewind=False)
        self.detectors.drop(p.partition for p in partitions)
        self.rollup.drop(p.partition for p in partitions)
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
        topics = [s.transactions_topic, s.error_topic, s.fraud_topic, s.rollups_topic]
        if not self._wait_for_broker(lambda: ensure_topics(s, topics, timeout=10), "creating topics"):
            return self.stats
        producer = self._producer_ref = self._producer()
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
        try:
            while not self.stop.is_set():
                msgs = consumer.consume(BATCH_SIZE, POLL_TIMEOUT)
                now = self.clock()
                if msgs:
                    self._last_data = now
                    if self.stats.first_batch_at is None:
                        self.stats.first_batch_at = now
                    self.state.mark_up()
                    if self._open is None:
                        producer.begin_transaction()
                        self._open = _OpenTxn(started=now)
                    self._process(producer, msgs, self._open)
                txn = self._open
                if txn is not None and (
                    not msgs or txn.messages >= TXN_MAX_MESSAGES or now - txn.started >= TXN_MAX_SECONDS
                ):
                    self._finish(consumer, producer, rewind=True)
                elif not msgs and self._idle_for_long(now):
                    logger.info("idle for %.1f s, stopping", self.until_idle)
                    break
                if now - last_report >= REPORT_EVERY:
                    rate = (self.stats.messages - reported) / (now - last_report)
                    logger.info(
                        "%.0f msg/s; %d messages, %d invalid, %d error records, %d fraud alerts",
                        rate,
                        self.stats.messages,
                        self.stats.invalid,
                        self.stats.records,
                        self.stats.alerts,
                    )
                    last_report, reported = now, self.stats.messages
        finally:
            if self._open is not None:  # stopping: commit what was processed
                self._finish(consumer, producer, rewind=False)
        logger.info(
            "stopped: %d messages, %d invalid, %d error records, %d fraud alerts %s",
            self.stats.messages,
            self.stats.invalid,
            self.stats.records,
            self.stats.alerts,
            self.stats.by_code,
        )

    def _process(self, producer: Producer, msgs: list[Message], txn: _OpenTxn) -> None:
        """Validate `msgs`, run the fraud detectors, produce records into the open transaction.

        The hot loop: a valid message takes the fast path (decode_plain: typed
        msgspec decoding) and its partition's detector; only invalid ones pay
        for the full judgement.
        """
        s = self.settings
        skew, error_topic, fraud_topic = s.time_skew_ms, s.error_topic, s.fraud_topic
        last, by_code = txn.last, txn.by_code
        detectors, get_detector = self.detectors.by_partition, self.detectors.get
        fraud = self.detect_fraud
        n = 0
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self.state.on_error(err)
                continue
            # A message without error has a partition and an offset.
            partition, offset = cast(int, msg.partition()), cast(int, msg.offset())
            last[partition] = offset
            n += 1
            ts_type, ts = msg.timestamp()
            if ts_type == 0:  # TIMESTAMP_NOT_AVAILABLE: fall back to our clock
                ts = int(time.time() * 1000)
            detector = (detectors.get(partition) or get_detector(partition)) if fraud else None
            checked, alerts = observe(detector, msg.value(), ts, skew)
            self.rollup.add_message(partition, msg.value(), ts, checked, skew)
            if checked is None and not alerts:
                continue
            source = Source(s.transactions_topic, partition, offset, ts)
            if checked is not None:
                txn.invalid += 1
                for key, record_value in error_records(checked, source):
                    self._produce(producer, error_topic, record_value, key)
                    txn.records += 1
                for code in checked.codes:
                    by_code[code] = by_code.get(code, 0) + 1
            if alerts:
                src = source.as_dict()
                for alert in alerts:
                    self._produce(producer, fraud_topic, alert.to_json(src), alert.customer_id.encode())
                    txn.alerts += 1
        txn.messages += n

    @staticmethod
    def _produce(producer: Producer, topic: str, value: bytes, key: bytes | None) -> None:
        """Produce into the open transaction, waiting for room when the local queue is full."""
        while True:
            try:
                producer.produce(topic, value, key)
                return
            except BufferError:
                producer.poll(0.1)

    def _produce_rollups(self, producer: Producer) -> None:
        """Produce the aggregates of the runs the open transaction changed (cumulative, keyed by run)."""
        topic = self.settings.rollups_topic
        for key, value, ts in self.rollup.flush():
            while True:
                try:
                    producer.produce(topic, value, key, timestamp=ts)
                    break
                except BufferError:
                    producer.poll(0.1)

    def _idle_for_long(self, now: float) -> bool:
        """True when --until-idle is set and nothing arrived for that long since assignment."""
        return self.until_idle is not None and self._assigned and now - self._last_data >= self.until_idle

    def _finish(self, consumer: Consumer, producer: Producer, rewind: bool) -> None:
        """Commit the open transaction with its offsets; after an abort, rewind (if asked) to re-read it."""
        txn, self._open = self._open, None
        if txn is None:
            return
        topic = self.settings.transactions_topic
        offsets = [TopicPartition(topic, p, o + 1) for p, o in txn.last.items()]
        self._produce_rollups(producer)
        if self._commit(consumer, producer, offsets):
            self.stats.merge(txn)
            self.stats.transactions += 1
            self.stats.last_commit_at = self.clock()
        elif rewind:
            self._rewind(consumer, list(txn.last))
        else:
            # Stopping or revoked: whoever reads these partitions next rebuilds their fraud state.
            self.detectors.drop(txn.last)

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
            self.rollup.reset()  # the aborted runs never counted; the re-read starts new runs
            self.stats.aborted += 1
            return False

    def _rewind(self, consumer: Consumer, partitions: list[int]) -> None:
        """Seek `partitions` back to their committed offsets and rebuild their fraud state up to there."""
        topic = self.settings.transactions_topic
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        if self.detect_fraud:
            self.detectors.rebuild({tp.partition: tp.offset for tp in committed})
        for tp in committed:
            # No commit yet (negative offset): start where the group would, at the beginning.
            consumer.seek(TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
