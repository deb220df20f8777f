"""The ingest worker's error paths, with fakes that raise the real error types (as quix-streams tests its producer).

`KafkaException(KafkaError(code, retriable=..., txn_requires_abort=..., fatal=...))`
from the producer's transactional calls: retriable errors are retried with a
bound, abortable ones abort and rewind, fatal and unexpected ones abort the
open transaction and stop the worker; offsets are never committed without the
records they cover. The happy path is tested on the real broker
(tests/kafka/test_ingest_kafka.py).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from dashboard.core.schema import ERROR_TOPIC
from dashboard.core.settings import Settings
from dashboard.ingest import __main__ as ingest_main
from dashboard.ingest import worker as worker_module
from dashboard.ingest.worker import (
    MAX_ABORTS_IN_A_ROW,
    IngestWorker,
    ProducerWedged,
    WorkerError,
    bounded_call,
    retry_txn_op,
)
from tests.hostile import NOW_MS, event

TOPIC = Settings().transactions_topic


def retriable(code: int = KafkaError._TIMED_OUT) -> KafkaException:
    return KafkaException(KafkaError(code, "try again", retriable=True))


def abortable() -> KafkaException:
    return KafkaException(KafkaError(KafkaError._STATE, "abort me", txn_requires_abort=True))


def fatal() -> KafkaException:
    return KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True))


class FakeMessage:
    def __init__(self, partition: int, offset: int, value: bytes | None) -> None:
        self._partition, self._offset, self._value = partition, offset, value

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return 1, NOW_MS

    def value(self) -> bytes | None:
        return self._value

    def topic(self) -> str:
        return TOPIC


class FakeConsumer:
    """Reads `log` from each partition's committed offset, honours seek(); stops the worker after 3 empty reads."""

    def __init__(self, log: list[FakeMessage], stop: threading.Event, committed: dict[int, int]) -> None:
        self.log, self.stop, self.committed_offsets = log, stop, committed
        self.position = {m.partition(): max(committed.get(m.partition(), 0), 0) for m in log}
        self.seeks: list[tuple[int, int]] = []
        self.empty = 0

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        out = [m for m in self.log if m.offset() >= self.position[m.partition()]][:num_messages]
        for m in out:
            self.position[m.partition()] = m.offset() + 1
        self.empty = 0 if out else self.empty + 1
        if self.empty >= 3:
            self.stop.set()
        return out

    def consumer_group_metadata(self) -> object:
        return "group-metadata"

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.committed_offsets.get(tp.partition, -1001)) for tp in partitions
        ]

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.partition, tp.offset))
        self.position[tp.partition] = max(tp.offset, 0)


Op = Callable[[], None]


class FakeProducer:
    """A transactional producer whose calls fail as scripted: `failures[name]` lists exceptions to raise first."""

    def __init__(self, failures: dict[str, list[BaseException]] | None = None) -> None:
        self.failures = failures or {}
        self.calls: list[str] = []
        self.pending: list[tuple[str, bytes]] = []
        self.pending_offsets: list[tuple[int, int]] = []
        self.committed: list[tuple[str, bytes]] = []  # records of committed transactions
        self.committed_offsets: dict[int, int] = {}
        self.in_txn = False

    def committed_on(self, topic: str) -> list[bytes]:
        """Values committed to `topic` (the worker also commits per-minute aggregates to the rollups topic)."""
        return [value for t, value in self.committed if t == topic]

    def _call(self, name: str) -> None:
        self.calls.append(name)
        queue = self.failures.get(name)
        if queue:
            raise queue.pop(0)

    def begin_transaction(self) -> None:
        self._call("begin")
        assert not self.in_txn
        self.in_txn = True

    def produce(self, topic: str, value: bytes, key: bytes | None = None, timestamp: int = 0) -> None:
        self._call("produce")
        assert self.in_txn
        self.pending.append((topic, value))

    def poll(self, timeout: float) -> int:
        return 0

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], meta: object, timeout: float) -> None:
        self._call("send_offsets")
        self.pending_offsets = [(tp.partition, tp.offset) for tp in offsets]

    def commit_transaction(self, timeout: float) -> None:
        self._call("commit")
        self.committed.extend(self.pending)
        self.committed_offsets.update(self.pending_offsets)
        self.pending, self.pending_offsets, self.in_txn = [], [], False

    def abort_transaction(self, timeout: float) -> None:
        self._call("abort")
        self.pending, self.pending_offsets, self.in_txn = [], [], False


class WedgedProducer(FakeProducer):
    """send_offsets_to_transaction blocks until `release` is set, ignoring its timeout (librdkafka #5456/#5511)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.ticks = 0  # metadata requests while send_offsets_to_transaction blocks

    def list_topics(self, topic: str, timeout: float) -> None:
        self.ticks += 1
        if self.ticks == 1:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "no answer"))  # ignored: the next tick comes

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], meta: object, timeout: float) -> None:
        self._call("send_offsets")
        self.release.wait(60)

    def flush(self, timeout: float) -> int:
        self._call("flush")
        return 0


def invalid(i: int) -> bytes:
    return orjson.dumps(event(transaction_id=f"t{i}", total_amount=1))  # ERR_AMOUNT: one record each


def run_loop(
    producer: FakeProducer, log: list[FakeMessage], committed: dict[int, int] | None = None
) -> tuple[IngestWorker, FakeConsumer]:
    stop = threading.Event()
    w = IngestWorker(Settings(), txn_id="test", stop=stop, detect_fraud=False)
    consumer = FakeConsumer(log, stop, committed or {})
    w._producer_ref = producer  # type: ignore[assignment]
    w._loop(consumer, producer)  # type: ignore[arg-type]
    return w, consumer


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module.time, "sleep", lambda s: None)


# --- retry_txn_op ----------------------------------------------------------------------------------


def test_a_retriable_error_is_retried_until_the_call_succeeds() -> None:
    failures = [retriable(), retriable(KafkaError.COORDINATOR_LOAD_IN_PROGRESS)]
    calls: list[float] = []

    def op(timeout: float) -> None:
        calls.append(timeout)
        if failures:
            raise failures.pop(0)

    retry_txn_op(op, "committing", seconds=30, sleep=lambda s: None)
    assert len(calls) == 3


def test_retries_are_bounded_by_attempts_and_by_the_deadline() -> None:
    calls: list[float] = []

    def always(timeout: float) -> None:
        calls.append(timeout)
        raise retriable()

    with pytest.raises(KafkaException):
        retry_txn_op(always, "committing", seconds=1000, attempts=4, sleep=lambda s: None)
    assert len(calls) == 4
    now = [0.0]

    def slow(timeout: float) -> None:
        now[0] += 3.0
        calls.append(timeout)
        raise retriable()

    calls.clear()
    with pytest.raises(KafkaException):
        retry_txn_op(slow, "committing", seconds=10, attempts=100, clock=lambda: now[0], sleep=lambda s: None)
    assert len(calls) == 4  # 3 s per try within a 10 s deadline
    assert calls[0] == 10 and calls[-1] < calls[0]  # each try gets the time left


def test_a_non_retriable_error_is_raised_at_once() -> None:
    calls = []

    def op(timeout: float) -> None:
        calls.append(timeout)
        raise abortable()

    with pytest.raises(KafkaException):
        retry_txn_op(op, "committing", seconds=30)
    assert len(calls) == 1


# --- bounded_call: a librdkafka call that ignores its timeout ------------------------------------


@pytest.fixture
def short_overrun(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "OVERRUN_SECONDS", 0.2)
    monkeypatch.setattr(worker_module, "TICK_SECONDS", 0.05)


def test_bounded_call_returns_or_raises_what_the_call_does() -> None:
    done: list[str] = []
    bounded_call(lambda: done.append("called"), 1.0, "op")
    assert done == ["called"]
    with pytest.raises(KafkaException) as caught:
        bounded_call(lambda: (_ for _ in ()).throw(retriable()), 1.0, "op")
    assert caught.value.args[0].retriable()


def test_bounded_call_gives_up_on_a_call_blocked_past_its_timeout(short_overrun: None) -> None:
    release = threading.Event()
    with pytest.raises(ProducerWedged, match="send_offsets_to_transaction still blocked"):
        bounded_call(lambda: release.wait(60), 0.1, "send_offsets_to_transaction")
    release.set()


@pytest.fixture
def usr1() -> Iterator[list[str]]:
    order: list[str] = []
    previous = signal.getsignal(signal.SIGUSR1)
    yield order
    signal.signal(signal.SIGUSR1, previous)


def test_signals_are_handled_while_the_call_blocks(usr1: list[str]) -> None:
    # The handler releases the blocked call: the call only returns released if the handler ran while it
    # blocked (a main thread blocked in the C call itself runs no Python signal handler until it returns).
    release = threading.Event()

    def handler(signum: int, frame: object) -> None:
        usr1.append("handler")
        release.set()

    def blocked() -> None:  # runs off the main thread: a C call there would keep the handler from running
        usr1.append("main thread" if threading.current_thread() is threading.main_thread() else "helper")
        usr1.append("released" if release.wait(30) else "timed out")

    signal.signal(signal.SIGUSR1, handler)
    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGUSR1)).start()
    bounded_call(blocked, 30.0, "op")
    assert usr1 == ["helper", "handler", "released"]


def test_a_wedged_send_offsets_stops_the_worker_without_touching_the_producer(
    short_overrun: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    producer = WedgedProducer()
    stop = threading.Event()
    consumer = FakeConsumer([FakeMessage(0, i, invalid(i)) for i in range(3)], stop, {})
    consumer.subscribe = lambda *a, **k: None  # type: ignore[attr-defined]
    consumer.close = lambda: None  # type: ignore[attr-defined]
    producer.init_transactions = lambda t: None  # type: ignore[attr-defined]
    monkeypatch.setattr(worker_module, "ensure_topics", lambda *a, **k: [])
    real = worker_module.retry_txn_op
    monkeypatch.setattr(worker_module, "retry_txn_op", lambda op, what, seconds: real(op, what, min(seconds, 0.5)))
    w = IngestWorker(Settings(), txn_id="test", stop=stop, detect_fraud=False)
    monkeypatch.setattr(w, "_producer", lambda: producer)
    monkeypatch.setattr(w, "_consumer", lambda: consumer)
    try:
        with pytest.raises(WorkerError, match=r"send_offsets_to_transaction still blocked .*librdkafka #5511"):
            w.run()
        # Nothing after the blocked call: an abort or flush would conflict with it (or block too).
        assert producer.calls[-1] == "send_offsets" and "abort" not in producer.calls and "flush" not in producer.calls
        assert producer.committed == [] and producer.committed_offsets == {} and w._open is None
        assert producer.ticks >= 2  # a connection was kept busy while the call blocked (see IngestWorker._producer)
    finally:
        producer.release.set()


# --- the loop ----------------------------------------------------------------------------------------


def test_clean_run_commits_records_with_their_offsets() -> None:
    producer = FakeProducer()
    w, _ = run_loop(producer, [FakeMessage(0, i, invalid(i)) for i in range(3)])
    assert len(producer.committed_on(ERROR_TOPIC)) == 3 and producer.committed_offsets == {0: 3}
    assert w.stats.transactions == 1 and w.stats.records == 3 and w.stats.aborted == 0


def test_retriable_errors_in_send_offsets_and_commit_are_retried_and_the_batch_commits() -> None:
    producer = FakeProducer({"send_offsets": [retriable()], "commit": [retriable(), retriable()]})
    w, _ = run_loop(producer, [FakeMessage(0, i, invalid(i)) for i in range(3)])
    assert producer.calls.count("send_offsets") == 2 and producer.calls.count("commit") == 3
    assert producer.committed_offsets == {0: 3} and len(producer.committed_on(ERROR_TOPIC)) == 3
    assert w.stats.aborted == 0


def test_an_abortable_commit_aborts_rewinds_and_the_re_read_commits_once() -> None:
    producer = FakeProducer({"commit": [abortable()]})
    w, consumer = run_loop(producer, [FakeMessage(1, 10 + i, invalid(i)) for i in range(3)], committed={1: 10})
    assert producer.calls.count("abort") == 1
    assert consumer.seeks == [(1, 10)]  # back to the committed offset
    assert len(producer.committed_on(ERROR_TOPIC)) == 3 and producer.committed_offsets == {1: 13}  # once, not twice
    assert w.stats.aborted == 1 and w.stats.transactions == 1


def test_a_record_rejected_every_time_stops_the_worker_instead_of_dropping_it() -> None:
    producer = FakeProducer({"commit": [abortable() for _ in range(MAX_ABORTS_IN_A_ROW)]})
    with pytest.raises(WorkerError, match="in a row aborted"):
        run_loop(producer, [FakeMessage(0, 0, invalid(0))])
    assert producer.committed == [] and producer.committed_offsets == {}


@pytest.mark.parametrize(
    ("where", "error"),
    [
        ("commit", fatal()),
        ("send_offsets", fatal()),
        ("commit", KafkaException(KafkaError(KafkaError.INVALID_MSG, "not retriable, not abortable"))),
        ("produce", KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large"))),
        ("produce", RuntimeError("a bug")),
        ("commit", retriable()),  # retries exhausted: RETRY_ATTEMPTS of them
    ],
)
def test_fatal_or_unexpected_errors_abort_the_open_transaction_and_commit_nothing(
    where: str, error: BaseException
) -> None:
    producer = FakeProducer({where: [error] * (10 if where == "commit" and isinstance(error, KafkaException)
                                              and error.args[0].retriable() else 1)})  # fmt: skip
    with pytest.raises((KafkaException, RuntimeError)):
        run_loop(producer, [FakeMessage(0, i, invalid(i)) for i in range(3)])
    assert producer.calls[-1] == "abort"
    assert producer.committed == [] and producer.committed_offsets == {}


def test_run_turns_a_fatal_error_into_one_worker_error(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FakeProducer({"commit": [fatal()]})
    stop = threading.Event()
    consumer = FakeConsumer([FakeMessage(0, 0, invalid(0))], stop, {})
    consumer.subscribe = lambda *a, **k: None  # type: ignore[attr-defined]
    consumer.close = lambda: None  # type: ignore[attr-defined]
    producer.init_transactions = lambda t: None  # type: ignore[attr-defined]
    producer.flush = lambda t: 0  # type: ignore[attr-defined]
    monkeypatch.setattr(worker_module, "ensure_topics", lambda *a, **k: [])
    w = IngestWorker(Settings(), txn_id="test", stop=stop, detect_fraud=False)
    monkeypatch.setattr(w, "_producer", lambda: producer)
    monkeypatch.setattr(w, "_consumer", lambda: consumer)
    with pytest.raises(WorkerError, match=r"Kafka error _FENCED \(fatal\): fenced"):
        w.run()
    assert producer.calls[-1] == "abort" and producer.committed_offsets == {}


def test_the_entry_point_prints_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def boom(self: IngestWorker) -> None:
        raise WorkerError("Kafka error _FENCED (fatal): fenced")

    monkeypatch.setattr(IngestWorker, "run", boom)
    monkeypatch.setattr(ingest_main, "stop_on_signals", threading.Event)
    assert ingest_main.main(["--processes", "1", "--until-idle", "1"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["ingest: stopped: Kafka error _FENCED (fatal): fenced"]


# --- rebalance callbacks -------------------------------------------------------------------------------


def open_worker(producer: FakeProducer, committed: dict[int, int]) -> tuple[IngestWorker, FakeConsumer]:
    """A worker with an open transaction holding two messages of partitions 0 and 1."""
    stop = threading.Event()
    w = IngestWorker(Settings(), txn_id="test", stop=stop, detect_fraud=False)
    consumer = FakeConsumer([], stop, committed)
    w._producer_ref = producer  # type: ignore[assignment]
    producer.begin_transaction()
    w._open = worker_module._OpenTxn(started=0.0)
    w._process(producer, [FakeMessage(0, 5, invalid(0)), FakeMessage(1, 7, invalid(1))], w._open)  # type: ignore[arg-type, list-item]
    return w, consumer


def test_on_lost_aborts_the_open_transaction_and_commits_nothing() -> None:
    producer = FakeProducer()
    w, consumer = open_worker(producer, {0: 5, 1: 7})
    w.detectors.get(0), w.detectors.get(1)
    w._on_lost(consumer, [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])  # type: ignore[arg-type]
    assert producer.calls[-1] == "abort" and "commit" not in producer.calls and "send_offsets" not in producer.calls
    assert w._open is None and w.detectors.by_partition == {}


def test_on_revoke_commits_with_a_short_bound_and_a_failure_propagates(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = FakeProducer()
    w, consumer = open_worker(producer, {})
    w._on_revoke(consumer, [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])  # type: ignore[arg-type]
    assert producer.committed_offsets == {0: 6, 1: 8} and len(producer.committed_on(ERROR_TOPIC)) == 2
    seen: list[float] = []
    real = worker_module.retry_txn_op

    def spy(op: Any, what: str, seconds: float, *args: Any, **kwargs: Any) -> None:
        seen.append(seconds)
        real(op, what, seconds, *args, **kwargs)

    monkeypatch.setattr(worker_module, "retry_txn_op", spy)
    producer = FakeProducer({"commit": [retriable()] * 10})
    w, consumer = open_worker(producer, {})
    with pytest.raises(KafkaException):
        w._on_revoke(consumer, [TopicPartition(TOPIC, 0)])  # type: ignore[arg-type]
    assert seen and set(seen) == {worker_module.REVOKE_RETRY_SECONDS}
    assert w._open is not None  # left open for the loop to abort
    assert producer.committed_offsets == {}
