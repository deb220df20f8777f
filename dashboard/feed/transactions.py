"""The dashboard's live feed: one background consumer per server process.

A `Feed` reads every partition of the transactions topic into a `RingBuffer`
(the history charts read the ingest workers' per-minute aggregates instead:
`dashboard.feed.rollups`). It starts with the newest messages that fit the
buffer (backfill), then tails the topic. It disturbs nobody: partitions are
`assign()`ed, the group id is a throwaway one that librdkafka requires, and
no offset is ever committed. A missing topic or an unreachable broker is a
state shown in `health()`, never a crash; the feed fills in by itself once
they appear. A topic deleted and created again (Pulse's flush mode; noticed
by its topic id, at the pace of the metadata look) clears the buffer and
backfills from the new topic, and the Health page's last event says so. It
never calls `st.*`: pages read `buffer.snapshot()` and `health()`.
While it catches up a backlog it decodes in slices of SLICE messages and,
before each, waits (at most MAX_YIELD s) for the page runs under way to finish
(`store.priority.page_runs`), so a page renders about as fast during catch-up
as at rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, Message, TopicPartition

from dashboard.core.settings import Settings
from dashboard.feed.probe import PipelineProbe
from dashboard.feed.status import FeedStatus, Health, Pipeline
from dashboard.feed.viewer import viewer_config, viewer_group
from dashboard.kafka.admin import TopicIdentity, admin_client
from dashboard.kafka.broker_state import DOWN_CODES, BrokerState
from dashboard.kafka.config import client_config_error
from dashboard.kafka.offsets import backfill_starts
from dashboard.store.buffer import Batch, RingBuffer
from dashboard.store.decode import RawMessage, to_batch
from dashboard.store.priority import ReaderPriority, page_runs

logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
SLICE = 500  # messages decoded between two looks at page runs under way (a few ms of Python)
MAX_YIELD = 0.05  # seconds a slice waits at most for page runs to finish: the feed's floor while pages render
POLL_TIMEOUT = 0.5  # seconds; bounds how late a stop request is seen
QUERY_TIMEOUT = 2.0  # seconds for a metadata or watermark request


class Feed:
    """Consumes the transactions topic into `buffer` on a daemon thread; see the module docstring.

    `metadata_interval` is how often partitions are re-listed (new ones are
    read from their start; a missing topic or an unreachable broker is retried
    every `retry_interval`), `lag_interval` how often the lag per partition is
    refreshed, `probe_interval` how often the pipeline figures (ingest lag,
    error-log size) are read. `clock` (epoch seconds) dates the health figures.
    `priority` holds the page runs the feed yields to.
    """

    def __init__(
        self,
        settings: Settings,
        buffer: RingBuffer,
        clock: Callable[[], float] = time.time,
        *,
        metadata_interval: float = 10.0,
        retry_interval: float = 2.0,
        lag_interval: float = 5.0,
        probe_interval: float = 5.0,
        priority: ReaderPriority = page_runs,
    ) -> None:
        self.settings = settings
        self.buffer = buffer
        self.clock = clock
        self.priority = priority
        self.metadata_interval = metadata_interval
        self.retry_interval = retry_interval
        self.lag_interval = lag_interval
        self.probe_interval = probe_interval
        self.group_id = viewer_group("transactions")  # never joined, never committed
        self._broker = BrokerState(settings.bootstrap_servers, logger)
        self._status = FeedStatus(settings.bootstrap_servers, settings.transactions_topic, settings.stale_seconds)
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._waiting = False  # consumer thread only: "waiting for topic" was logged
        self._identity: TopicIdentity | None = None  # consumer thread only: the topic's id, as last seen

    def start(self) -> None:
        """Start the consumer and probe threads; a second call does nothing. A stopped feed cannot restart."""
        with self._start_lock:
            if self._stop.is_set():
                raise RuntimeError("a stopped Feed cannot be started again; create a new one")
            if self._threads:
                return
            problem = client_config_error(self.settings)
            if problem is not None:
                # Threads would die creating their clients; say why on the Health page and the banner instead.
                logger.error("feed not started: %s", problem)
                self._status.misconfigured(problem, self.clock())
                return
            self._threads = [
                threading.Thread(target=self._consume_loop, name="darooghe-feed", daemon=True),
                threading.Thread(target=self._probe_loop, name="darooghe-feed-probe", daemon=True),
            ]
            for thread in self._threads:
                thread.start()
        logger.info("feed started: %s, topic %s", self.settings.describe(), self.settings.transactions_topic)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the threads to stop and wait up to `timeout` seconds; they close their clients."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("%s did not stop within %.1f s", thread.name, timeout)

    def health(self) -> Health:
        """Return an immutable snapshot of the feed's state; thread-safe."""
        return self._status.health(self.clock(), self._broker.down, self._broker.auth_error)

    # -- consumer thread ------------------------------------------------------------
    def _on_error(self, err: KafkaError) -> None:
        """error_cb of the consumer: broker outages become the "down" state (logged once per outage)."""
        self._broker.on_error(err)
        self._status.error(err.str(), self.clock())

    def _mark_up(self) -> None:
        self._broker.mark_up()
        self._status.answered()

    def _consume_loop(self) -> None:
        # The Pulse generator is not transactional, so read_committed costs
        # nothing here (the stable offset is the high watermark); it keeps a
        # transactional producer's aborted events from ever showing.
        consumer = Consumer(viewer_config(self.settings, "transactions", self._on_error, self.group_id))
        # Its errors are the consumer's too: error_cb would report an outage twice.
        admin = admin_client(self.settings, error_cb=lambda err: logger.debug("feed admin: %s", err.str()))
        self._identity = TopicIdentity(admin, self.settings.transactions_topic)
        try:
            next_meta = next_lag = 0.0
            while not self._stop.is_set():
                answered = False
                if time.monotonic() >= next_meta:
                    assigned = self._refresh_assignment(consumer)
                    answered = assigned is not None
                    next_meta = time.monotonic() + (self.metadata_interval if assigned else self.retry_interval)
                if time.monotonic() >= next_lag:
                    self._refresh_highs(consumer)
                    next_lag = time.monotonic() + self.lag_interval
                # Also serves error_cb, so it runs even while nothing is assigned.
                messages = consumer.consume(BATCH_SIZE, POLL_TIMEOUT)
                self._status.polled(self.clock())
                if answered:
                    # Only now: that consume() served the errors queued before
                    # the broker answered, which must not mark it down again.
                    self._mark_up()
                for i in range(0, len(messages), SLICE):
                    self.priority.wait_for_readers(MAX_YIELD)  # pages first (module docstring)
                    if self._handle(messages[i : i + SLICE]):
                        next_meta = 0.0  # the topic went away: re-list now
        except Exception as exc:
            logger.exception("feed thread crashed")
            self._status.crashed(f"{type(exc).__name__}: {exc}")
        finally:
            consumer.close()
            logger.info("feed stopped")

    def _refresh_assignment(self, consumer: Consumer) -> bool | None:
        """Assign new partitions (backfilling on first sight of the topic).

        Return True when the topic is assigned, False when the broker answered
        but the topic is missing (or watermarks failed), None when the broker
        did not answer.
        """
        topic = self.settings.transactions_topic
        try:
            meta = consumer.list_topics(topic, timeout=QUERY_TIMEOUT).topics.get(topic)
        except KafkaException as exc:
            # librdkafka reports a broker outage through error_cb only once
            # (identical errors are suppressed), and a broker that answered
            # during its own shutdown marked us up: so a failed request marks
            # down too. No answer within the timeout counts as no broker.
            err = exc.args[0]
            if err.code() not in DOWN_CODES:
                err = KafkaError(KafkaError._TRANSPORT, f"no metadata answer within {QUERY_TIMEOUT:g} s ({err.str()})")
            self._on_error(err)
            return None
        known = self._status.positions()
        if meta is None or meta.error is not None or not meta.partitions:
            if known:
                consumer.unassign()
                self._status.assigned({}, {})
            if not self._waiting:
                logger.info("waiting for topic %s to appear", topic)
            self._waiting = True
            return False
        self._waiting = False
        change = self._identity.check(QUERY_TIMEOUT) if self._identity is not None else None
        if change is not None:
            self._restart(consumer, *change)
            known = {}
        current = set(meta.partitions)
        new = sorted(current - set(known))
        gone = sorted(set(known) - current)
        if gone:
            consumer.incremental_unassign([TopicPartition(topic, p) for p in gone])
        starts: dict[int, int] = {}
        marks: dict[int, tuple[int, int]] = {}
        if new:
            try:
                marks = {p: self._watermarks(consumer, topic, p) for p in new}
            except (KafkaException, TimeoutError) as exc:
                logger.debug("watermark request failed: %s", exc)
                return False
            # First sight: the newest messages that fit the buffer. Partitions
            # added later hold only messages newer than our last look: all of them.
            starts = backfill_starts(marks, self.buffer.capacity) if not known else {p: marks[p][0] for p in new}
            consumer.incremental_assign([TopicPartition(topic, p, starts[p]) for p in new])
            logger.info(
                "reading %s partitions %s from offsets %s (%d messages)",
                topic,
                new,
                [starts[p] for p in new],
                sum(marks[p][1] - starts[p] for p in new),
            )
        if new or gone:
            kept = {p: pos for p, pos in known.items() if p in current}
            self._status.assigned(kept | starts, {p: high for p, (_, high) in marks.items()})
        return True

    def _restart(self, consumer: Consumer, old: str, new: str) -> None:
        """The topic was recreated: drop the buffered rows and read the new topic as on first sight."""
        topic = self.settings.transactions_topic
        consumer.unassign()
        self._status.assigned({}, {})
        self.buffer.clear()
        text = f"{topic} was recreated (topic id {new}, was {old}): buffer cleared, reading the new topic"
        logger.warning("%s", text)
        self._status.error(text, self.clock())

    @staticmethod
    def _watermarks(consumer: Consumer, topic: str, partition: int) -> tuple[int, int]:
        """Return (low, high) of one partition; raise TimeoutError when the broker does not answer."""
        marks = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=QUERY_TIMEOUT)
        if marks is None:
            raise TimeoutError(f"no watermarks for {topic} [{partition}] within {QUERY_TIMEOUT} s")
        low, high = marks
        return low, high

    def _refresh_highs(self, consumer: Consumer) -> None:
        """Update the high watermarks from librdkafka's cache (fed by every fetch response; no request)."""
        topic = self.settings.transactions_topic
        highs = {}
        for p in self._status.positions():
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)
            if high >= 0:
                highs[p] = high
        self._status.highs(highs)

    def _handle(self, messages: list[Message]) -> bool:
        """Append the messages' rows to the buffer; True when a message says the topic is gone."""
        raws: list[RawMessage] = []
        nexts: dict[int, int] = {}
        topic_gone = False
        for msg in messages:
            err = msg.error()
            if err is not None:
                topic_gone |= self._on_message_error(err)
                continue
            ts_type, ts = msg.timestamp()
            if ts_type == TIMESTAMP_NOT_AVAILABLE:  # pre-0.10 message format only
                ts = int(self.clock() * 1000)
            partition, offset = msg.partition(), msg.offset()
            if partition is None or offset is None:  # only error events lack them
                continue
            raws.append(RawMessage(msg.value(), ts, partition, offset))
            nexts[partition] = offset + 1
        if raws:
            batch = self._to_batch(raws)
            self.buffer.append(batch)
            self._mark_up()
            self._status.appended(batch, nexts, self.clock())
        return topic_gone

    def _to_batch(self, raws: list[RawMessage]) -> Batch:
        """Convert messages to a batch; if that raises, drop only the messages that make it raise.

        `to_batch` turns bad input into error rows, so an exception is a bug;
        it must not stop the live view for good (a restart would meet the
        same message again), so it is logged with its traceback and survived.
        """
        skew = self.settings.time_skew_ms
        try:
            return to_batch(raws, skew)
        except Exception:
            logger.exception("converting %d messages failed; retrying them one by one", len(raws))
        kept = []
        for raw in raws:
            try:
                to_batch([raw], skew)
                kept.append(raw)
            except Exception as exc:
                where = f"{self.settings.transactions_topic} [{raw.partition}] at offset {raw.offset}"
                self._status.error(f"dropped a message that broke decoding: {where} ({exc!r})", self.clock())
        return to_batch(kept, skew)

    def _on_message_error(self, err: KafkaError) -> bool:
        """Record a per-message error; True when it means the topic or partition is gone."""
        code = err.code()
        if code == KafkaError._PARTITION_EOF:
            return False
        if code in DOWN_CODES:
            self._on_error(err)
            return False
        if self._status.error(err.str(), self.clock()):  # log a repeated error once
            logger.warning("consumer error on %s: %s", self.settings.transactions_topic, err.str())
        return code == KafkaError.UNKNOWN_TOPIC_OR_PART

    # -- probe thread -----------------------------------------------------------------
    def _probe_loop(self) -> None:
        # The consumer's own errors decide "down": the probe's clients retry on
        # their own schedule and would report an outage late, or twice.
        probe = PipelineProbe(self.settings, lambda err: logger.debug("probe: %s", err.str()), QUERY_TIMEOUT)
        try:
            while not self._stop.is_set():
                self._status.pipeline(probe.figures())
                self._stop.wait(self.probe_interval)
        except Exception:
            logger.exception("feed probe thread crashed; pipeline figures stay unknown")
            self._status.pipeline(Pipeline())
        finally:
            probe.close()
