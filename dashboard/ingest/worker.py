"""The ingest worker: validate every transaction, write each violation and fraud signal once.

Guarantee: exactly-once. Consumed messages are handled in Kafka transactions
of at most TXN_MAX_SECONDS (TXN_CATCHUP_SECONDS while it reads a backlog) or
TXN_MAX_MESSAGES messages (a setting): the error records produced to
darooghe.error_logs, the fraud alerts produced to darooghe.fraud_alerts, the
per-minute aggregates produced to darooghe.rollups (`dashboard.store.aggregate`),
and the consumer group's new offsets (`send_offsets_to_transaction`) commit or
abort together, and an offset is only ever committed with every output of the
messages it covers. A worker killed at any moment leaves either a whole
transaction (records and offsets) or none of it; its successor re-reads from
the last committed offsets. Readers of the error log must use
`isolation.level=read_committed` to see only committed records.

Every message gets a judgement: `transform` cannot raise, so no message stops
the worker. Outside per-message handling, librdkafka's error classes decide
(as quix-streams' `_retry_transaction_op`):
- retriable: retry with a bound (RETRY_ATTEMPTS within RETRY_SECONDS; within
  REVOKE_RETRY_SECONDS inside the revoke callback, where the rebalance waits);
- `txn_requires_abort()`: abort, rewind to the committed offsets (rebuilding
  the fraud state to there) and go on; MAX_ABORTS_IN_A_ROW aborts of the same
  work mean a record the cluster keeps rejecting: the worker stops rather
  than drop it;
- fatal, exhausted or unexpected: abort the open transaction and raise
  `WorkerError` (the entry point prints one line and exits 1);
- send_offsets_to_transaction still blocked past its timeout + OVERRUN_SECONDS
  (librdkafka #5511, see `_producer`): `ProducerWedged`, a WorkerError raised
  without touching the producer; the transaction stays uncommitted (the broker
  aborts it, the restarted worker fences it).
On a clean stop (signal, --until-idle) the open transaction is committed. On a
rebalance it is committed in the revoke callback, before the partitions move;
on a lost assignment (`on_lost`: the group moved on without us) it is aborted,
never committed, and the lost partitions' state is dropped.

Consumers in group `darooghe-ingest` split the partitions, so workers scale
out; each holds its own transactional id. A stable --transactional-id is also
the consumer's `group.instance.id` (static membership), so a restarted worker
takes its partitions back at once instead of after the session timeout.

A transactions topic deleted and created again under a running worker (Pulse's
flush mode) shows as a partition's offsets going back: the open transaction
(old input mixed with new) is aborted, every open aggregate run and all fraud
state is dropped, and the partitions are re-read from their committed offsets
(Kafka dropped them with the old topic: from the beginning), so nothing of the
old stream is counted into the new topic's aggregates.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from dashboard.core.settings import Settings
from dashboard.core.tally import Tally
from dashboard.ingest.replay import PartitionDetectors
from dashboard.ingest.transform import transform
from dashboard.kafka.admin import ensure_topics, pipeline_topics
from dashboard.kafka.broker_state import BrokerState
from dashboard.store.aggregate import MinuteAggregator

if TYPE_CHECKING:
    from dashboard.ingest.metrics import WorkerMetrics

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
POLL_TIMEOUT = 0.2  # seconds consume() waits when the stream trickles: part of an error record's latency
REPORT_EVERY = 5.0
TXN_MAX_SECONDS = 0.5  # a transaction spans consume() calls for at most this long (an error record's latency)...
TXN_CATCHUP_SECONDS = 2.0  # ...or this long while consume() returns full batches (a backlog: latency is moot)...
# ...or settings.txn_max_messages messages: each commit waits for the broker (~10 ms) and repeats the records
# of the minutes the transaction touched (a record per minute and transaction; see store.aggregate)
RETRY_ATTEMPTS = 5  # tries of a transactional call that fails with a retriable error...
RETRY_SECONDS = 60.0  # ...within this long (each try gets the time left as its timeout)
REVOKE_RETRY_SECONDS = 10.0  # the same inside the revoke and lost callbacks: the rebalance waits for us
MAX_ABORTS_IN_A_ROW = 5  # aborts without a commit between them: something is rejected every time
DRAIN_CHECK_EVERY = 1.0  # seconds between the --until-idle "drained?" queries
IDLE_CONNECTION_MS = 5000  # the producer closes a broker connection idle this long (see _producer)
OVERRUN_SECONDS = 10.0  # send_offsets_to_transaction may run this long past its timeout before the worker stops
TICK_SECONDS = 1.0  # while it runs longer than this, a metadata request this often keeps one connection busy


GC_THRESHOLDS = (100_000, 20, 1000)  # see tune_gc


def tune_gc() -> None:
    """Set the cyclic garbage collector for the worker's loop: freeze what start-up built, collect young objects rarely.

    The loop allocates a few short-lived containers per message that reference
    counting frees at once, and holds a large, long-lived state (fraud windows,
    aggregate runs). With Python's default thresholds (700, 10, 10) the
    collector ran every few hundred messages and re-scanned that state: about
    a fifth of the per-message loop's CPU time (19.6 vs 15.9 µs per message,
    measured in-process over a week-long Pulse history). Cycles are still
    collected, only less often: the memory they can hold in between stays
    bounded by the first threshold.
    """
    gc.collect()
    gc.freeze()  # modules, settings, clients: never scanned again
    gc.set_threshold(*GC_THRESHOLDS)


class WorkerError(Exception):
    """The worker cannot go on (fatal Kafka error, exhausted retries, a bug); its open transaction was aborted."""


class ProducerWedged(WorkerError):
    """A producer call ran past its timeout and is still blocked inside librdkafka: the producer is unusable.

    Its open transaction cannot be aborted from here (every transactional call
    conflicts with the blocked one); it stays uncommitted until the broker
    aborts it (transaction.timeout.ms) or the restarted worker fences it.
    """


def bounded_call(
    call: Callable[[], object], timeout: float, what: str, tick: Callable[[], object] | None = None
) -> None:
    """Run `call()` (a librdkafka call given `timeout`) in a helper thread; wait at most `timeout + OVERRUN_SECONDS`.

    Returns when the call returns, raises what it raises, and raises
    `ProducerWedged` when it is still blocked after that long. Meanwhile the
    caller's thread calls `tick()` every TICK_SECONDS (a KafkaException from it
    is ignored) and otherwise waits in an interruptible join, so signals
    (SIGTERM) are handled: librdkafka 2.16's send_offsets_to_transaction can
    block forever after a group coordinator dies (librdkafka #5511; its timeout
    is not checked, #5456), and a main thread blocked in it runs no signal handler.
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the waiting thread
            failure.append(exc)

    overrun = OVERRUN_SECONDS
    deadline = time.monotonic() + timeout + overrun
    helper = threading.Thread(target=run, name=what, daemon=True)
    helper.start()
    while True:
        helper.join(max(0.0, min(TICK_SECONDS, deadline - time.monotonic())))
        if not helper.is_alive() or time.monotonic() >= deadline:
            break
        if tick is not None:
            with contextlib.suppress(KafkaException):  # a failed tick only loses its own effect
                tick()
    if helper.is_alive():
        raise ProducerWedged(
            f"{what} still blocked {overrun:.0f} s past its {timeout:.0f} s timeout (librdkafka #5511);"
            " stopping: its transaction is not committed, and a restarted worker fences it"
        )
    if failure:
        raise failure[0]


@dataclass
class Counts(Tally):
    """What was processed: messages, invalid ones, records written, by error code (`merge` adds them up)."""

    messages: int = 0
    invalid: int = 0
    records: int = 0
    alerts: int = 0
    by_code: dict[str, int] = field(default_factory=dict)


@dataclass
class _OpenTxn(Counts):
    """What the open transaction holds: offsets handled and counts, merged into Stats on commit."""

    started: float = 0.0
    last: dict[int, int] = field(default_factory=dict)  # partition -> last offset handled


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


def retry_txn_op(
    op: Callable[[float], object],
    what: str,
    seconds: float,
    attempts: int = RETRY_ATTEMPTS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] | None = None,
) -> None:
    """Call `op(timeout)`; retry a retriable KafkaError at most `attempts` times in all within `seconds`.

    Each try gets the time left as its timeout (at least 1 s). Raises the last
    KafkaException when it is not retriable, or the bound is reached.
    """
    deadline = clock() + seconds
    backoff = 0.2
    for attempt in range(1, attempts + 1):
        try:
            op(max(deadline - clock(), 1.0))
            return
        except KafkaException as exc:
            err = exc.args[0]
            if not err.retriable() or attempt == attempts or clock() + backoff >= deadline:
                raise
            logger.warning("%s failed (%s); retry %d of %d", what, err.str(), attempt, attempts - 1)
            (sleep or time.sleep)(backoff)
            backoff = min(backoff * 2, 2.0)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        err = exc.args[0]
        kind = "fatal" if err.fatal() else "retriable, retries exhausted" if err.retriable() else "not retriable"
        return f"Kafka error {err.name()} ({kind}): {err.str()}"
    return f"{type(exc).__name__}: {exc}"


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
        before_reading: Callable[[], object] | None = None,
    ) -> None:
        self.settings = settings
        self.before_reading = before_reading  # called once the clients are ready, before joining the group
        self.txn_id = transactional_id(settings, txn_id)
        self.static_id = txn_id  # group.instance.id: only a stable id makes sense
        self.until_idle = until_idle
        self.stop = stop or threading.Event()
        self.clock = clock
        self.stats = Stats()
        self.state = BrokerState(settings.bootstrap_servers, logger)
        self._last_data = clock()
        self._next_drain_check = 0.0
        self._behind: dict[int, int] = {}
        self._open: _OpenTxn | None = None
        self._aborts_in_a_row = 0
        self._producer_ref: Producer | None = None
        self._closing = False  # consumer.close() under way: a late assignment is never read
        self._wedged = False  # a producer call is blocked for good (ProducerWedged): leave the producer alone
        self.detect_fraud = detect_fraud
        self.detectors = PartitionDetectors(settings)
        self.rollup = MinuteAggregator()  # per-minute aggregates of the open transaction's partitions
        self._next: dict[int, int] = {}  # partition -> offset after the last one handled (since our last seek)
        self.metrics: WorkerMetrics | None = None  # set by the entry point when METRICS_PORT is on

    # -- wiring ---------------------------------------------------------------
    def _consumer(self) -> Consumer:
        extra = {"group_instance_id": self.static_id} if self.static_id else {}
        return Consumer(
            self.settings.kafka_config(
                group_id=self.settings.ingest_group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                fetch_min_bytes=1,
                queued_max_messages_kbytes=65536,
                error_cb=self.state.on_error,
                **extra,
            )
        )

    def _producer(self) -> Producer:
        # connections.max.idle.ms: after a broker dies for good, librdkafka 2.16 can keep it cached as
        # the group coordinator and wait for *any* broker state change before it looks for the new one
        # (librdkafka #5511). A blocked send_offsets_to_transaction leaves the transaction coordinator's
        # connection idle, and closing it is such a change; the lookup then goes over the connection
        # _finish keeps busy meanwhile (bounded_call's tick: idle ones close all at once, and a lookup
        # sent on a closing one fails and is retried only at the next change). The cost: a reconnect
        # after 5 s without transactions.
        return Producer(
            self.settings.kafka_config(
                transactional_id=self.txn_id,
                # Longer than send_offsets_to_transaction can hang after a coordinator dies (up to ~22 s seen in
                # the failover test; librdkafka caps message.timeout.ms at this), so the open transaction's records
                # do not time out meanwhile; a dead worker's open transaction holds read_committed readers this long
                # at most (a restart with the same --transactional-id fences it at once).
                transaction_timeout_ms=30000,
                connections_max_idle_ms=IDLE_CONNECTION_MS,
                linger_ms=5,
                compression_type="lz4",
                error_cb=self.state.on_error,
                on_delivery=self._on_delivery,
                delivery_report_only_error=True,
            )
        )

    @staticmethod
    def _on_delivery(err: KafkaError | None, msg: Message) -> None:
        # A rejected record fails its transaction's commit (abort, re-read); this line says which and why.
        if err is not None:
            logger.error("record for %s rejected: %s; its transaction will abort", msg.topic(), err.str())

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.info("assigned partitions %s", sorted(p.partition for p in partitions))
        self._forget_positions(p.partition for p in partitions)
        if partitions and self.detect_fraud and not self._closing:
            # The rebuild runs here, before any message of these partitions is handled; its
            # deadline (PartitionDetectors.deadline) stays well under max.poll.interval.ms.
            # An assignment during close() (members leaving together) is never read: no rebuild.
            committed = consumer.committed(partitions, timeout=30)
            self.detectors.rebuild({tp.partition: tp.offset for tp in committed})
        self._last_data = self.clock()  # idleness counts from the latest assignment

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Still a member of the old generation: commit the open transaction now,
        # so the next owner of these partitions starts right after it.
        if self._open is not None and self._producer_ref is not None:
            self._finish(consumer, self._producer_ref, rewind=False, seconds=REVOKE_RETRY_SECONDS)
        self.detectors.drop(p.partition for p in partitions)
        self.rollup.drop(p.partition for p in partitions)
        self._forget_positions(p.partition for p in partitions)
        logger.info("revoked partitions %s", sorted(p.partition for p in partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # No longer a member: the offsets of these partitions can no longer be committed,
        # and records committed without them would be written again by their new owner.
        lost = sorted(p.partition for p in partitions)
        logger.warning("lost partitions %s (the group moved on); aborting the open transaction", lost)
        txn = self._open
        if txn is not None and self._producer_ref is not None:
            self._open = None
            retry_txn_op(self._producer_ref.abort_transaction, "aborting", REVOKE_RETRY_SECONDS)
            self.rollup.reset()  # the aborted runs never counted; re-reads start new runs
            self.stats.aborted += 1
            kept = [p for p in txn.last if p not in lost]
            if kept:
                self._rewind(consumer, kept)
        self.detectors.drop(lost)
        self.rollup.drop(lost)
        self._forget_positions(lost)

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
        """Process until stopped (or drained and idle for `until_idle` s); return the counters.

        Raises `WorkerError` (after aborting the open transaction) when it cannot go on.
        """
        s = self.settings
        topics = pipeline_topics(s)  # the topics a worker reads and writes, created if missing
        try:
            if not self._wait_for_broker(lambda: ensure_topics(s, topics, timeout=10), "creating topics"):
                return self.stats
        except KafkaException as exc:
            raise WorkerError(_describe(exc)) from exc
        producer = self._producer_ref = self._producer()
        consumer = self._consumer()
        try:
            if not self._wait_for_broker(lambda: producer.init_transactions(10), "initialising transactions"):
                return self.stats
            if self.before_reading is not None:
                self.before_reading()
            consumer.subscribe(
                [s.transactions_topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
            )
            logger.info("ingest worker %s started: %s", self.txn_id, s.describe())
            self._loop(consumer, producer)
        except KafkaException as exc:
            raise WorkerError(_describe(exc)) from exc
        except WorkerError:
            raise
        except Exception as exc:  # a bug outside per-message handling: its traceback helps, then one line
            logger.error("unexpected error outside message handling", exc_info=True)
            raise WorkerError(_describe(exc)) from exc
        finally:
            self._close(consumer, producer)
        return self.stats

    def _close(self, consumer: Consumer, producer: Producer) -> None:
        self._closing = True
        try:
            consumer.close()
            if not self._wedged:
                producer.flush(10)
        except Exception as exc:  # after a fatal error the clients may refuse; nothing is left to save
            logger.warning("closing the Kafka clients: %s", _describe(exc))

    def _loop(self, consumer: Consumer, producer: Producer) -> None:
        tune_gc()
        max_messages = self.settings.txn_max_messages
        last_report, reported = self.clock(), 0
        try:
            while not self.stop.is_set():
                msgs = consumer.consume(BATCH_SIZE, POLL_TIMEOUT)
                now = self.clock()
                if self.metrics is not None:
                    self.metrics.tick(consumer, now)
                if msgs:
                    self._last_data = now
                    if self.stats.first_batch_at is None:
                        self.stats.first_batch_at = now
                    self.state.mark_up()
                    if self._open is None:
                        producer.begin_transaction()
                        self._open = _OpenTxn(started=now)
                    recreated = self._process(producer, msgs, self._open)
                    if recreated is not None:
                        self._restart_recreated(consumer, producer, *recreated)
                        continue
                txn = self._open
                span = TXN_CATCHUP_SECONDS if len(msgs) >= BATCH_SIZE else TXN_MAX_SECONDS
                if txn is not None and (not msgs or txn.messages >= max_messages or now - txn.started >= span):
                    self._finish(consumer, producer, rewind=True)
                elif not msgs and self._idle_and_drained(consumer, now):
                    logger.info(
                        "idle for %.1f s and every partition committed up to its end, stopping", self.until_idle
                    )
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
            self._finish(consumer, producer, rewind=False)  # a clean stop: commit what was handled
        except ProducerWedged:
            self._open, self._wedged = None, True  # no call can reach it; the broker or a successor aborts
            raise
        except BaseException:
            self._abort_open(producer)  # never commit on any other exit
            raise
        logger.info(
            "stopped: %d messages, %d invalid, %d error records, %d fraud alerts %s",
            self.stats.messages,
            self.stats.invalid,
            self.stats.records,
            self.stats.alerts,
            self.stats.by_code,
        )

    def _process(self, producer: Producer, msgs: list[Message], txn: _OpenTxn) -> tuple[int, int, int] | None:
        """Judge `msgs`, run the fraud detectors, produce records into the open transaction.

        Returns None, or (partition, offset, expected) and handles nothing
        further when a partition's offset went back (see the module docstring).

        The hot loop: `transform` takes a valid message through the fast path
        and its partition's detector and returns None; only invalid messages
        and alerts produce. A message's offset is recorded after its records
        are produced, so an offset never covers a message not handled.
        """
        s = self.settings
        skew, topic, error_topic, fraud_topic = s.time_skew_ms, s.transactions_topic, s.error_topic, s.fraud_topic
        last, by_code = txn.last, txn.by_code
        detectors, get_detector = self.detectors.by_partition, self.detectors.get
        fraud = self.detect_fraud
        produce = self._produce
        rollup = self.rollup
        nexts = self._next
        n = 0
        for msg in msgs:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self.state.on_error(err)
                continue
            # A message without error has a partition and an offset.
            partition, offset = cast(int, msg.partition()), cast(int, msg.offset())
            if offset < nexts.get(partition, 0):
                txn.messages += n
                return partition, offset, nexts[partition]
            n += 1
            ts_type, ts = msg.timestamp()
            if ts_type == 0:  # TIMESTAMP_NOT_AVAILABLE: fall back to our clock
                ts = int(time.time() * 1000)
            detector = (detectors.get(partition) or get_detector(partition)) if fraud else None
            out = transform(detector, msg.value(), topic, partition, offset, ts, skew, rollup)
            if out is not None:
                if out.codes:
                    txn.invalid += 1
                    for code in out.codes:
                        by_code[code] = by_code.get(code, 0) + 1
                for key, value in out.errors:
                    produce(producer, error_topic, value, key)
                txn.records += len(out.errors)
                for key, value in out.alerts:
                    produce(producer, fraud_topic, value, key)
                txn.alerts += len(out.alerts)
            last[partition] = offset
            nexts[partition] = offset + 1
        txn.messages += n
        return None

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

    def _idle_and_drained(self, consumer: Consumer, now: float) -> bool:
        """True when --until-idle is set, nothing arrived for that long, and the group has drained the topic.

        Drained: the group's committed offset on every partition of the topic
        reached the high watermark, whoever owns it (a partition still held by
        a killed member counts as not drained). Assumes the input topic is
        written without transactions (as Pulse writes it): a transaction
        marker at a partition's end would hold its committed offset one short.
        """
        if self.until_idle is None or now - self._last_data < self.until_idle or now < self._next_drain_check:
            return False
        self._next_drain_check = now + DRAIN_CHECK_EVERY
        topic = self.settings.transactions_topic
        try:
            meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
            if meta is None or meta.error is not None:
                return False
            parts = [TopicPartition(topic, p) for p in sorted(meta.partitions)]
            behind = {}
            for tp in consumer.committed(parts, timeout=10):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=5)
                done = max(tp.offset, low)  # nothing committed (negative): everything from low on is left
                if done < high:
                    behind[tp.partition] = high - done
        except KafkaException as exc:
            logger.warning("checking whether the topic is drained: %s; retrying", exc.args[0].str())
            return False
        if behind and behind != self._behind:
            logger.info("idle, but the group has not committed %s (partition: messages left); waiting", behind)
        self._behind = behind
        return not behind

    def _finish(self, consumer: Consumer, producer: Producer, rewind: bool, seconds: float = RETRY_SECONDS) -> bool:
        """Commit the open transaction with its offsets; True when committed (or nothing was open).

        When the transaction must be aborted, abort it and, with `rewind`,
        seek its partitions back to their committed offsets to re-read them
        (without: stopping or revoked, drop their fraud state). Other errors
        propagate (the loop aborts and the worker stops).
        """
        txn, self._open = self._open, None
        if txn is None:
            return True
        self._open = txn  # still open until committed or aborted: an exception below aborts it
        topic = self.settings.transactions_topic
        offsets = [TopicPartition(topic, p, o + 1) for p, o in txn.last.items()]
        try:
            self._produce_rollups(producer)
            if offsets:
                self._send_offsets(producer, offsets, consumer.consumer_group_metadata(), seconds)
            retry_txn_op(producer.commit_transaction, "committing", seconds)
        except KafkaException as exc:
            err = exc.args[0]
            if err.fatal() or not err.txn_requires_abort():
                raise
            self._open = None
            logger.warning("transaction aborted (%s); re-reading its messages", err.str())
            retry_txn_op(producer.abort_transaction, "aborting", seconds)
            self.rollup.reset()  # the aborted runs never counted; the re-read starts new runs
            self.stats.aborted += 1
            self._aborts_in_a_row += 1
            if self._aborts_in_a_row >= MAX_ABORTS_IN_A_ROW:
                raise WorkerError(
                    f"{self._aborts_in_a_row} transactions in a row aborted, the last with {err.str()};"
                    " stopping rather than dropping records (nothing of them was committed)"
                ) from exc
            if rewind:
                self._rewind(consumer, list(txn.last))
            else:
                self.detectors.drop(txn.last)  # whoever reads these partitions next rebuilds their state
            return False
        self._open = None
        self._aborts_in_a_row = 0
        self.stats.merge(txn)
        self.stats.transactions += 1
        self.stats.last_commit_at = self.clock()
        return True

    def _send_offsets(self, producer: Producer, offsets: list[TopicPartition], group: object, seconds: float) -> None:
        """Add `offsets` to the open transaction, retried within `seconds`; `ProducerWedged` if librdkafka hangs.

        While the call waits (librdkafka #5511, see `_producer`), a metadata
        request every TICK_SECONDS keeps one broker connection busy.
        """
        topic = self.settings.transactions_topic
        retry_txn_op(
            lambda t: bounded_call(
                lambda: producer.send_offsets_to_transaction(offsets, group, t),
                t,
                "send_offsets_to_transaction",
                tick=lambda: producer.list_topics(topic, timeout=TICK_SECONDS),
            ),
            "sending offsets",
            seconds,
        )

    def _abort_open(self, producer: Producer) -> None:
        """Abort the open transaction, if any, on the way out; a failure is logged (the broker aborts it later)."""
        txn, self._open = self._open, None
        if txn is None:
            return
        try:
            retry_txn_op(producer.abort_transaction, "aborting", REVOKE_RETRY_SECONDS)
            self.stats.aborted += 1
            logger.warning("aborted the open transaction (%d messages): none of it is committed", txn.messages)
        except Exception as exc:
            logger.warning(
                "could not abort the open transaction (%s); the broker aborts it after transaction.timeout.ms",
                _describe(exc),
            )

    def _forget_positions(self, partitions: Iterable[int]) -> None:
        """Forget where `partitions` were read up to (after a seek, an assignment or a revoke)."""
        for p in partitions:
            self._next.pop(p, None)

    def _restart_recreated(
        self, consumer: Consumer, producer: Producer, partition: int, offset: int, expected: int
    ) -> None:
        """The transactions topic was recreated: abort, drop every open run and fraud state, re-read from committed."""
        logger.warning(
            "%s [%d] went back to offset %d after %d: the topic was recreated; aborting the open transaction"
            " and re-reading every partition from its committed offset with fresh aggregates and fraud state",
            self.settings.transactions_topic,
            partition,
            offset,
            expected - 1,
        )
        self._abort_open(producer)
        self.rollup.reset()
        partitions = [tp.partition for tp in consumer.assignment()]
        self.detectors.drop(partitions)
        self._rewind(consumer, partitions)

    def _rewind(self, consumer: Consumer, partitions: list[int]) -> None:
        """Seek `partitions` back to their committed offsets and rebuild their fraud state up to there."""
        self._forget_positions(partitions)
        topic = self.settings.transactions_topic
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        if self.detect_fraud:
            self.detectors.rebuild({tp.partition: tp.offset for tp in committed})
        for tp in committed:
            # No commit yet (negative offset): start where the group would, at the beginning.
            consumer.seek(TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
