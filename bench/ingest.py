"""Ingest benchmark: the fastest plain consume-and-parse loop vs the ingest worker, judged from outside.

    python bench/ingest.py [--events 300000] [--rates 0.01,0.10] [--repeats 3] [--processes 1,2,3]
                           [--notebook-seconds 10] [--write]

Against the real local broker (scripts/local-kafka start). For each invalid
rate it pre-produces the events once with Pulse (history mode, default
FRAUD_RATE, SEED 42, a topic of --partitions partitions), then measures on that
same topic, in rounds made back to back:

  ceiling variants: plain loops a user could write in an afternoon, each
      consuming the whole topic and parsing every value (assign or subscribe,
      consume(n, 1.0) with several n, orjson.loads or msgspec.json.decode, a
      larger local queue). The ceiling is the variant with the best median.
  (b) worker: `python -m dashboard.ingest --processes 1 --until-idle 1` (detectors
      on), judged as an outsider would: a separate consumer polls the group's
      committed offsets every 20 ms; the rate is the messages committed from the
      first commit to the last, over that time.
  (b0) the same with --no-fraud, for the detectors' cost.
  processes: the worker with --processes N for each N of --processes (same measure),
      with the cores its processes, the broker and the whole machine kept
      busy over the same span (CPU time from /proc), and the worker's CPU
      seconds per 100,000 messages: whether more processes are held back by
      the cores or by waiting.
  (c) notebook: the original notebook's loop (poll one message, json.loads, its
      time bug, producer.flush() after each error record), for --notebook-seconds
      on a prefix of the topic; (c') the same with the time bug fixed.

Each round runs every ceiling variant, b, b0 and each process count once;
every figure is the median over --repeats rounds, and every ratio the median of
the per-round ratios (b/a uses the ceiling variant's run of the same round).
Prints the tables and, with --write, replaces the ingest section of BENCHMARKS.md.

    python bench/ingest.py --baseline DIR [--this DIR2] [--events 300000] [--repeats 5]
                           [--write [--section NAME] [--title TEXT]]

compares this checkout's worker (b) (or that of checkout DIR2) with the worker
of another checkout DIR (say a `git worktree` of main before a change) on the
same pre-produced topic: each in a fresh subprocess, fraud detectors on,
alternating which goes first, same statistic as (b). On a shared machine
wall-clock rates swing by 2x, so it also counts messages per CPU second of the
worker's whole process (all threads) and times the worker's per-message loop
alone (`IngestWorker._process` over the topic's messages, read once, with a
producer that drops records: all the per-message code) in CPU seconds, best of
3, in the same alternating pairs. Where valgrind is installed it also counts
the instructions a message of that loop runs, under callgrind over the first
20,000 messages: a figure that is the same on every run. Reports each pair,
the medians of the paired ratios this/baseline and the load average; --write
replaces the BENCHMARKS.md section --section (default ingest-baseline), titled
--title, so each comparison can keep its own.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import output_topics, pipeline_env, write_section  # noqa: E402
from dashboard.core.settings import Settings  # noqa: E402
from dashboard.core.validation import parse_timestamp  # noqa: E402
from dashboard.kafka.admin import delete_topics, message_count  # noqa: E402

COMMIT_POLL = 0.02  # seconds between the outsider's committed-offset queries
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> list[str]:
    """Fields of /proc/PID/stat after the command name ([] when the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def cpu_snapshot(root_pid: int) -> dict[str, float]:
    """CPU seconds so far (user + system, all threads) of the process `root_pid` with its descendants
    ("worker"), of the Kafka broker processes (Java running kafka.Kafka: "broker"), and of the whole
    machine (busy time of /proc/stat: "machine")."""
    parents: dict[str, str] = {}
    cpu: dict[str, float] = {}
    brokers: set[str] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(entry.name)
        if not fields:
            continue
        parents[entry.name] = fields[1]  # after the name: state, ppid, ... utime (11), stime (12)
        cpu[entry.name] = (int(fields[11]) + int(fields[12])) / TICK
        try:
            if b"kafka.Kafka" in (entry / "cmdline").read_bytes():
                brokers.add(entry.name)
        except OSError:
            pass
    tree = {str(root_pid)}
    while True:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        if not more:
            break
        tree |= more
    busy = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    idle = int(busy[3]) + int(busy[4])  # idle, iowait
    return {
        "worker": sum(cpu.get(pid, 0.0) for pid in tree),
        "broker": sum(cpu[pid] for pid in brokers),
        "machine": (sum(int(x) for x in busy[:8]) - idle) / TICK,
    }


def cores_busy(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores kept busy between two `cpu_snapshot`s `seconds` apart, by key."""
    return {key: (after[key] - before[key]) / seconds for key in before}


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages as text."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def pre_produce(settings: Settings, topic: str, events: int, invalid_rate: float, partitions: int) -> None:
    """Produce `events` Pulse events (default FRAUD_RATE) to a new `topic` of `partitions` partitions."""
    # Its own output topics: a flush also empties the outputs, and those of a stack on the same broker must stay.
    env = pipeline_env(
        settings.bootstrap_servers,
        topic,
        f"pulse-{uuid.uuid4().hex[:8]}",
        HISTORY_EVENTS=str(events),
        INVALID_RATE=str(invalid_rate),
        SEED="42",
        EVENT_INIT_MODE="flush",
        TOPIC_PARTITIONS=str(partitions),
    )
    env.pop("FRAUD_RATE", None)  # Pulse's default
    try:
        subprocess.run([sys.executable, "-m", "dashboard.pulse", "--history-only"], env=env, cwd=ROOT, check=True)
    finally:
        delete_topics(settings, output_topics(env))


# -- ceiling variants -----------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One plain consume-and-parse loop."""

    name: str
    subscribe: bool = False
    batch: int = 5000
    parse: str = "orjson"
    queue_kbytes: int | None = None


VARIANTS = [
    Variant("subscribe, consume(1000), orjson (the issue's loop)", subscribe=True, batch=1000),
    Variant("subscribe, consume(5000), orjson", subscribe=True, batch=5000),
    Variant("assign, consume(1000), orjson", batch=1000),
    Variant("assign, consume(5000), orjson", batch=5000),
    Variant("assign, consume(20000), orjson", batch=20000),
    Variant("assign, consume(5000), msgspec.json.decode", batch=5000, parse="msgspec"),
    Variant("assign, consume(5000), orjson, 64 MB local queue", batch=5000, queue_kbytes=65536),
]


def plain_loop(settings: Settings, topic: str, total: int, v: Variant) -> float:
    """Messages/s of one plain loop over the whole topic, from its first batch to its last message."""
    extra: dict[str, Any] = {"queued_max_messages_kbytes": v.queue_kbytes} if v.queue_kbytes else {}
    consumer = Consumer(
        settings.kafka_config(
            group_id=f"bench-{uuid.uuid4().hex}", enable_auto_commit=False, auto_offset_reset="earliest", **extra
        )
    )
    if v.subscribe:
        consumer.subscribe([topic])
    else:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    loads: Callable[[bytes], object] = orjson.loads if v.parse == "orjson" else msgspec.json.decode
    n, start = 0, None
    deadline = time.monotonic() + 600
    try:
        while n < total and time.monotonic() < deadline:
            msgs = consumer.consume(v.batch, 1.0)
            if start is None and msgs:
                start = time.perf_counter()
            for msg in msgs:
                if msg.error() is None:
                    loads(msg.value())  # type: ignore[arg-type]  # no tombstones in the benchmark topic
                    n += 1
        assert start is not None and n == total, (n, total)
        return n / (time.perf_counter() - start)
    finally:
        consumer.close()


# -- the worker, judged through its committed offsets ----------------------------------


def worker(
    settings: Settings,
    topic: str,
    total: int,
    processes: int = 1,
    fraud: bool = True,
    root: Path = ROOT,
    cores: dict[str, float] | None = None,
) -> float:
    """Messages/s of `python -m dashboard.ingest` (of the checkout at `root`), from its first commit to its last.

    `cores`, if given, receives `cores_busy` over the same span: the worker's processes, the broker, the machine.
    """
    env = pipeline_env(settings.bootstrap_servers, topic, f"ingest-{uuid.uuid4().hex[:8]}")
    group = env["INGEST_GROUP"]
    cmd = [sys.executable, "-m", "dashboard.ingest", "--until-idle", "1"]
    if root == ROOT or processes != 1:  # a baseline checkout from before --processes runs one process
        cmd += ["--processes", str(processes)]
    if not fraud:
        cmd.append("--no-fraud")
    # read_uncommitted: committed() then answers at once, not after the worker's open transaction ends.
    watcher = Consumer(
        settings.kafka_config(group_id=group, enable_auto_commit=False, isolation_level="read_uncommitted")
    )
    parts = [TopicPartition(topic, p) for p in watcher.list_topics(topic, timeout=10).topics[topic].partitions]
    proc = subprocess.Popen(cmd, env=env, cwd=root, stderr=subprocess.PIPE, text=True)
    first: tuple[float, int] | None = None
    try:
        while True:
            committed = sum(max(tp.offset, 0) for tp in watcher.committed(parts, timeout=10))
            now = time.perf_counter()
            if committed >= total:
                cpu_last = cpu_snapshot(proc.pid)  # before the worker's idle wait and exit
                break
            if committed and first is None:
                first = (now, committed)
                cpu_first = cpu_snapshot(proc.pid)
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited {proc.returncode} at {committed}/{total}: {proc.stderr.read()}")  # type: ignore[union-attr]
            time.sleep(COMMIT_POLL)
        proc.wait(120)
        if proc.returncode != 0:
            raise RuntimeError(f"worker exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
        if first is None:
            raise RuntimeError("the first commit covered the whole topic: use more --events")
        if cores is not None:
            cores.update(cores_busy(cpu_first, cpu_last, now - first[0]))
        return (total - first[1]) / (now - first[0])
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.close()
        delete_topics(settings, output_topics(env))


class NotebookTransactionEvent:
    """The notebook's TransactionEvent, behaviour (and time bug) kept.

    With `kafka_ms` given, the time rule is fixed: ISO parsed, judged against the Kafka timestamp.
    """

    def __init__(self, data: dict[str, Any], kafka_ms: int | None) -> None:
        self.transaction_id = data.get("transaction_id")
        self.timestamp = data.get("timestamp")
        self.amount = float(data.get("amount", 0))
        self.vat_amount = float(data.get("vat_amount", 0))
        self.commission_amount = float(data.get("commission_amount", 0))
        self.total_amount = float(data.get("total_amount", 0))
        self.payment_method = data.get("payment_method")
        self.device_info = data.get("device_info", {})
        self.ingestion_time = datetime.now().timestamp() if kafka_ms is None else kafka_ms / 1000
        self.fixed = kafka_ms is not None

    def validate(self) -> list[dict[str, Any]]:
        errors = []
        if abs(self.total_amount - (self.amount + self.vat_amount + self.commission_amount)) > 0.01:
            errors.append({"error_code": "ERR_AMOUNT", "transaction_id": self.transaction_id})
        try:
            if self.fixed:
                ms = parse_timestamp(self.timestamp)
                if ms is None:
                    raise ValueError(self.timestamp)
                tx_time = datetime.fromtimestamp(ms / 1000)
            else:
                tx_time = datetime.fromtimestamp(self.timestamp)  # type: ignore[arg-type]  # the bug, kept
            now = datetime.fromtimestamp(self.ingestion_time)
            if tx_time > now or tx_time < now - timedelta(days=1):
                errors.append({"error_code": "ERR_TIME", "transaction_id": self.transaction_id})
        except (TypeError, ValueError):
            errors.append({"error_code": "ERR_TIME", "transaction_id": self.transaction_id})
        if self.payment_method == "mobile":
            os_name = self.device_info.get("os", "") if isinstance(self.device_info, dict) else ""
            if os_name not in ["iOS", "Android"]:
                errors.append({"error_code": "ERR_DEVICE", "transaction_id": self.transaction_id})
        return errors


def notebook(settings: Settings, topic: str, seconds: float, fixed: bool) -> tuple[float, int]:
    """(c) messages/s of the notebook loop over `seconds`; returns (rate, messages)."""
    consumer = Consumer(settings.kafka_config(group_id=f"bench-nb-{uuid.uuid4().hex}", auto_offset_reset="earliest"))
    consumer.subscribe([topic])
    producer = Producer(settings.kafka_config(client_id="bench-notebook"))
    error_topic = f"{topic}.nb-errors"
    n, start = 0, None
    try:
        while start is None or time.perf_counter() - start < seconds:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                if start is not None and msg is None:
                    break  # topic drained
                continue
            if start is None:
                start = time.perf_counter()
            data = json.loads(msg.value().decode("utf-8"))  # type: ignore[union-attr]  # as the notebook does
            for error in NotebookTransactionEvent(data, msg.timestamp()[1] if fixed else None).validate():
                producer.produce(error_topic, key=error.get("transaction_id"), value=json.dumps(error).encode())
                producer.flush(timeout=10)
            n += 1
        assert start is not None
        return n / (time.perf_counter() - start), n
    finally:
        consumer.close()
        delete_topics(settings, [error_topic])


_WORKER_RUN = """
import json, logging, sys, uuid
from dataclasses import replace
sys.path.insert(0, sys.argv[1])
from dashboard.core.settings import Settings
from dashboard.ingest.worker import IngestWorker
from dashboard.kafka.admin import delete_topics
logging.basicConfig(level=logging.WARNING)
topic = sys.argv[2]
s = Settings.from_env()
own = {"rollups_topic": topic + ".rollups"} if hasattr(s, "rollups_topic") else {}  # a baseline may predate it
s = replace(s, transactions_topic=topic, error_topic=topic + ".errors",
            fraud_topic=topic + ".fraud", ingest_group="bench-" + uuid.uuid4().hex[:8], **own)
import time
cpu = time.process_time()
stats = IngestWorker(s, until_idle=2.0).run()
cpu = time.process_time() - cpu  # every thread of the worker's process: Python and librdkafka's
delete_topics(s, [s.error_topic, s.fraud_topic, *own.values()])
print(json.dumps({"rate": stats.rate(), "messages": stats.messages, "cpu_rate": stats.messages / cpu}))
"""


_HOT_LOOP_RUN = """
import json, pickle, sys, time
sys.path.insert(0, sys.argv[1])
from dashboard.core.settings import Settings
from dashboard.ingest import worker as wm

class Msg:
    __slots__ = ("v", "t", "p", "o")
    def __init__(self, v, t, p, o): self.v, self.t, self.p, self.o = v, t, p, o
    def error(self): return None
    def partition(self): return self.p
    def offset(self): return self.o
    def timestamp(self): return (1, self.t)
    def value(self): return self.v

class DropProducer:
    def produce(self, topic, value, key=None): pass
    def poll(self, timeout): return 0

with open(sys.argv[2], "rb") as f:
    msgs = [Msg(*m) for m in pickle.load(f)]
count = int(sys.argv[3]) if len(sys.argv) > 3 else None  # given: the first `count` messages, once (callgrind)
if count is not None:
    msgs = msgs[:count]
batches = [msgs[i:i + 5000] for i in range(0, len(msgs), 5000)]
times = []
for _ in range(3 if count is None else 1):
    w = wm.IngestWorker(Settings(), detect_fraud=True)
    txn = wm._OpenTxn()
    start = time.process_time()
    for batch in batches:
        w._process(DropProducer(), batch, txn)
    times.append(time.process_time() - start)
    assert txn.messages == len(msgs)
print(json.dumps({"rate": len(msgs) / min(times) if min(times) else 0.0}))
"""

#: Messages whose per-message loop `loop_instructions` counts under callgrind (about 35 s each on this machine).
INSTRUCTION_MESSAGES = 20_000
CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")


def dump_messages(settings: Settings, topic: str, total: int, path: Path) -> None:
    """Read every message of `topic` once into `path` (a pickle of (value, Kafka ms, partition, offset))."""
    consumer = Consumer(settings.kafka_config(group_id=f"bench-{uuid.uuid4().hex}", enable_auto_commit=False))
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    out: list[tuple[bytes | None, int, int, int]] = []
    try:
        while len(out) < total:
            for msg in consumer.consume(5000, 1.0):
                if msg.error() is None:
                    out.append((msg.value(), msg.timestamp()[1], msg.partition() or 0, msg.offset() or 0))
    finally:
        consumer.close()
    with path.open("wb") as f:
        pickle.dump(out, f)


def hot_loop_in(root: Path, path: Path) -> float:
    """Messages per CPU second of the worker's per-message loop of the checkout at `root` (best of 3)."""
    out = subprocess.run(
        [sys.executable, "-c", _HOT_LOOP_RUN, str(root), str(path)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rate"])


def loop_instructions(root: Path, path: Path, count: int = INSTRUCTION_MESSAGES) -> float | None:
    """Instructions a message of the per-message loop of the checkout at `root` runs (None without valgrind).

    Counted by valgrind's callgrind over the first `count` messages, less a
    run over none (start-up, reading the dump): the same figure on every run,
    whatever else the machine does, where CPU time on a shared machine swings
    by a third from one minute to the next.
    """
    if shutil.which("valgrind") is None:
        return None
    totals = []
    for n in (0, count):
        out = subprocess.run(
            [*CALLGRIND, sys.executable, "-c", _HOT_LOOP_RUN, str(root), str(path), str(n)],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        collected = [line for line in out.stderr.splitlines() if "Collected :" in line]
        totals.append(int(collected[-1].split()[-1]))
    return (totals[1] - totals[0]) / count


def worker_in(root: Path, topic: str, total: int) -> tuple[float, float]:
    """(b) of the checkout at `root`, in a fresh subprocess: (messages/s, first batch to last commit;
    messages per CPU second of the worker's whole process, all threads, start-up and idle wait included)."""
    out = subprocess.run(
        [sys.executable, "-c", _WORKER_RUN, str(root), topic], cwd=root, capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["messages"] == total, (result, total)
    return float(result["rate"]), float(result["cpu_rate"])


def baseline(args: argparse.Namespace, settings: Settings) -> int:
    """Paired runs of this checkout's worker and the one at --baseline on the same topics; see the docstring."""
    base = Path(args.baseline).resolve()
    this = Path(args.this).resolve()
    rows = []
    instructions: list[tuple[float, float, float]] = []  # (rate, this, baseline): per message, callgrind
    for rate in [float(r) for r in args.rates.split(",")]:
        topic = f"bench.ingest.{uuid.uuid4().hex[:8]}"
        print(f"\n== INVALID_RATE={rate}: pre-producing {args.events} events to {topic}", flush=True)
        pre_produce(settings, topic, args.events, rate, args.partitions)
        total = message_count(settings, topic)
        dump = Path(tempfile.gettempdir()) / f"{topic}.pkl"
        dump_messages(settings, topic, total, dump)
        ours: list[float] = []
        theirs: list[float] = []
        ours_worker_cpu: list[float] = []
        theirs_worker_cpu: list[float] = []
        ours_cpu: list[float] = []
        theirs_cpu: list[float] = []
        for i in range(args.repeats):
            order = [(this, ours, ours_worker_cpu, ours_cpu), (base, theirs, theirs_worker_cpu, theirs_cpu)]
            for root, runs, worker_cpu, cpu in order if i % 2 == 0 else order[::-1]:
                wall_rate, cpu_rate = worker_in(root, topic, total)
                runs.append(wall_rate)
                worker_cpu.append(cpu_rate)
                cpu.append(hot_loop_in(root, dump))
            print(
                f"  pair {i + 1}: this {ours[-1]:,.0f} msg/s, baseline {theirs[-1]:,.0f} msg/s;"
                f" worker process: this {ours_worker_cpu[-1]:,.0f}, baseline {theirs_worker_cpu[-1]:,.0f}"
                f" msg per CPU s; per-message loop: this {ours_cpu[-1]:,.0f}, baseline {theirs_cpu[-1]:,.0f}"
                " msg per CPU s",
                flush=True,
            )
        statistics_ = (
            ("worker, wall clock", ours, theirs),
            ("worker process, CPU", ours_worker_cpu, theirs_worker_cpu),
            ("per-message loop, CPU", ours_cpu, theirs_cpu),
        )
        for label, a, b in statistics_:
            ratios = [o / t for o, t in zip(a, b, strict=True)]
            rows.append((rate, label, statistics.median(a), statistics.median(b), statistics.median(ratios), ratios))
        ours_ir, theirs_ir = loop_instructions(this, dump), loop_instructions(base, dump)
        if ours_ir is not None and theirs_ir is not None:
            print(f"  per-message loop: this {ours_ir:,.0f}, baseline {theirs_ir:,.0f} instructions a message")
            instructions.append((rate, ours_ir, theirs_ir))
        dump.unlink()
        delete_topics(settings, [topic])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    header = (
        "| INVALID_RATE | statistic (msg/s) | this (median) | baseline (median) | this/baseline, median of pairs"
        " | pairs |\n|---|---|---|---|---|---|"
    )
    lines = [
        f"| {r:.2f} | {label} | {o:,.0f} | {t:,.0f} | {m:.3f} | {', '.join(f'{x:.2f}' for x in rs)} |"
        for r, label, o, t, m, rs in rows
    ]
    table = "\n".join([header, *lines])
    if instructions:
        table += (
            "\n\nInstructions a message of the per-message loop (valgrind's callgrind over the first"
            f" {INSTRUCTION_MESSAGES:,} messages of the same topic, less a run over none; the same on every run):\n\n"
            "| INVALID_RATE | this | baseline | this/baseline |\n|---|---|---|---|\n"
            + "\n".join(f"| {r:.2f} | {o:,.0f} | {t:,.0f} | {o / t:.3f} |" for r, o, t in instructions)
        )
    print(f"\n{table}\nload average after the runs: {load}")
    if args.write:
        write_section(
            args.section,
            f"## {args.title}\n\n"
            f"Command: `python bench/ingest.py --baseline {args.baseline}"
            f"{'' if this == ROOT else f' --this {args.this}'} --events {args.events} --rates {args.rates}"
            f" --repeats {args.repeats} --section {args.section} --title '{args.title}'`"
            f" ({time.strftime('%Y-%m-%d')}, 2 cores shared with other work, load average"
            f" after the runs {load}). Both workers in fresh subprocesses, fraud detectors on, same pre-produced"
            " topic, alternating which goes first. Statistics: the worker's messages/s from first batch to last"
            " commit, as (b) above (wall clock, swings with the machine's load); messages per CPU second of the"
            " worker's whole process (all threads, librdkafka's included; start-up and the idle wait at the end"
            " included), steadier under load; and messages per CPU second of its per-message loop alone"
            " (`IngestWorker._process` over the topic's messages with a producer that"
            " drops records, best of 3), where changes to the per-message code show.\n\n"
            f"{table}\n",
        )
    return 0


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def paired(num: list[float], den: list[float]) -> float:
    """Median over rounds of num_i / den_i."""
    return statistics.median(n / d for n, d in zip(num, den, strict=True))


def measure_rate(
    settings: Settings, rate: float, args: argparse.Namespace, procs: list[int]
) -> tuple[str, list[str], dict[str, float]]:
    """Produce one stream, run the rounds; return (variants table, target lines, figures)."""
    topic = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    print(f"\n== INVALID_RATE={rate}: pre-producing {args.events} events to {topic}", flush=True)
    pre_produce(settings, topic, args.events, rate, args.partitions)
    total = message_count(settings, topic)
    runs: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    b_runs: list[float] = []
    b0_runs: list[float] = []
    p_runs: dict[int, list[float]] = {n: [] for n in procs}
    p_cores: dict[int, list[dict[str, float]]] = {n: [] for n in procs}
    try:
        for i in range(args.repeats):
            for v in VARIANTS:
                runs[v.name].append(plain_loop(settings, topic, total, v))
            b_cores: dict[str, float] = {}
            b_runs.append(worker(settings, topic, total, cores=b_cores))
            b0_runs.append(worker(settings, topic, total, fraud=False))
            for n in procs:  # 1 process is run b
                cores: dict[str, float] = b_cores if n == 1 else {}
                p_runs[n].append(b_runs[-1] if n == 1 else worker(settings, topic, total, n, cores=cores))
                p_cores[n].append(cores)
            print(
                f"  round {i + 1} (load {load_average()}): "
                + ", ".join(f"{name.split(' (')[0]} {r[-1]:,.0f}" for name, r in runs.items())
                + f"; worker {b_runs[-1]:,.0f}; no fraud {b0_runs[-1]:,.0f}; "
                + ", ".join(f"{n} proc {r[-1]:,.0f}" for n, r in p_runs.items()),
                flush=True,
            )
        nb = notebook(settings, topic, args.notebook_seconds, fixed=False) if args.notebook_seconds else None
        nb2 = notebook(settings, topic, args.notebook_seconds, fixed=True) if args.notebook_seconds else None
    finally:
        delete_topics(settings, [topic])
    best = max(runs, key=lambda name: med(runs[name]))
    a_runs = runs[best]
    lines = [
        f"| {name}{' **(ceiling)**' if name == best else ''} | {med(r):,.0f} | {paired(r, a_runs):.2f} |"
        for name, r in runs.items()
    ]
    table = "| plain loop | msg/s (median) | / ceiling (median of paired rounds) |\n|---|---|---|\n" + "\n".join(lines)
    figures = {
        "total": total,
        "a": med(a_runs),
        "b": med(b_runs),
        "b0": med(b0_runs),
        "b/a": paired(b_runs, a_runs),
        "b0/a": paired(b0_runs, a_runs),
        "cost": statistics.median(1 - b / b0 for b, b0 in zip(b_runs, b0_runs, strict=True)),
    }
    for n in procs:
        figures[f"p{n}"] = med(p_runs[n])
        figures[f"p{n}/a"] = paired(p_runs[n], a_runs)
        figures[f"p{n}/p1"] = paired(p_runs[n], p_runs[procs[0]]) if procs[0] == 1 else 0.0
        for key in ("worker", "broker", "machine"):
            figures[f"p{n}_{key}_cores"] = med([c[key] for c in p_cores[n]])
        # CPU seconds of the worker's processes per 100,000 messages, median of rounds
        figures[f"p{n}_cpu_per_100k"] = med(
            [c["worker"] / r * 100_000 for c, r in zip(p_cores[n], p_runs[n], strict=True)]
        )
    if nb and nb2:
        figures.update(c=nb[0], c_n=nb[1], c2=nb2[0], c2_n=nb2[1])
        figures.update({"b/c": figures["b"] / nb[0], "b/c2": figures["b"] / nb2[0]})
    return f"INVALID_RATE {rate:.2f} ({total:,} messages, best variant: {best}):\n\n{table}", lines, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rates", default="0.01,0.10")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3, help="rounds; medians over them are reported")
    parser.add_argument("--processes", default="1,2,3", help="worker process counts to compare")
    parser.add_argument("--notebook-seconds", type=float, default=10.0, help="0 skips the notebook loop")
    parser.add_argument("--baseline", metavar="DIR", help="only compare this worker with the one of checkout DIR")
    parser.add_argument("--this", metavar="DIR", default=str(ROOT), help="with --baseline: the checkout compared")
    parser.add_argument("--write", action="store_true", help="write the results into BENCHMARKS.md")
    parser.add_argument(
        "--section", default="ingest-baseline", help="with --baseline --write: the BENCHMARKS.md section written"
    )
    parser.add_argument(
        "--title", default="Ingest worker against a baseline checkout", help="with --baseline --write: its title"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.from_env()
    if args.baseline:
        return baseline(args, settings)
    procs = sorted({int(n) for n in args.processes.split(",")} | {1})
    load_start = load_average()
    started = time.monotonic()
    results = []
    for rate in [float(r) for r in args.rates.split(",")]:
        text, _, figures = measure_rate(settings, rate, args, procs)
        print("\n" + text, flush=True)
        results.append((rate, text, figures))
    load_end = load_average()

    main_header = (
        "| INVALID_RATE | (a) ceiling | (b) worker | (b0) worker, no fraud detectors | b/a | b0/a"
        " | detectors' cost 1-b/b0 | (c) notebook | (c') notebook, time bug fixed | b/c | b/c' |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    main_rows = []
    for rate, _, f in results:
        nb = (
            f"{f['c']:,.0f} ({f['c_n']:,.0f} msgs) | {f['c2']:,.0f} ({f['c2_n']:,.0f} msgs)"
            f" | {f['b/c']:.1f} | {f['b/c2']:.1f}"
            if "c" in f
            else "not run | not run | | "
        )
        main_rows.append(
            f"| {rate:.2f} | {f['a']:,.0f} | {f['b']:,.0f} | {f['b0']:,.0f} | **{f['b/a']:.2f}** | {f['b0/a']:.2f}"
            f" | {f['cost']:.0%} | {nb} |"
        )
    proc_header = (
        "| INVALID_RATE | "
        + " | ".join(f"{n} process(es) msg/s" for n in procs)
        + " | "
        + " | ".join(f"{n}/1" for n in procs if n != 1)
        + " | "
        + " | ".join(f"{n} / ceiling" for n in procs)
        + " |\n|"
        + "---|" * (1 + 3 * len(procs) - 1)
    )
    proc_rows = [
        f"| {rate:.2f} | "
        + " | ".join(f"{f[f'p{n}']:,.0f}" for n in procs)
        + " | "
        + " | ".join(f"**{f[f'p{n}/p1']:.2f}**" for n in procs if n != 1)
        + " | "
        + " | ".join(f"{f[f'p{n}/a']:.2f}" for n in procs)
        + " |"
        for rate, _, f in results
    ]
    cores = os.cpu_count() or 1
    cpu_rows = [
        f"| {rate:.2f} | {n} | {f[f'p{n}']:,.0f} | {f[f'p{n}_worker_cores']:.2f} | {f[f'p{n}_broker_cores']:.2f}"
        f" | {f[f'p{n}_machine_cores']:.2f} of {cores} | {f[f'p{n}_cpu_per_100k']:.2f} |"
        for rate, _, f in results
        for n in procs
    ]
    cpu_table = (
        "| INVALID_RATE | processes | msg/s | cores busy: worker | broker | machine | worker CPU s per 100,000 msgs |\n"
        "|---|---|---|---|---|---|---|\n" + "\n".join(cpu_rows)
    )
    targets = []
    for rate, _, f in results:
        ok = "met" if f["b/a"] >= 0.6 else "NOT met"
        default = (
            f"; the default command (--processes {cores}, every core) reaches {f[f'p{cores}/a']:.2f} of this"
            " one-process ceiling"
            if f"p{cores}/a" in f
            else ""
        )
        targets.append(
            f"- worker, one process, detectors on, >= 0.6 of the ceiling at INVALID_RATE {rate:.2f}: {ok}"
            f" ({f['b/a']:.2f}{default})"
        )
    for rate, _, f in results:
        if 2 in procs:
            ok = "met" if f["p2/p1"] >= 1.6 else "NOT met"
            targets.append(f"- 2 processes >= 1.6x one at INVALID_RATE {rate:.2f}: {ok} ({f['p2/p1']:.2f})")
    command = (
        f"python bench/ingest.py --events {args.events} --rates {args.rates} --partitions {args.partitions}"
        f" --repeats {args.repeats} --processes {args.processes} --notebook-seconds {args.notebook_seconds:g}"
    )
    body = (
        "## Ingest worker\n\n"
        f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M')}, 2 cores; load average (1/5/15 min)"
        f" {load_start} at the start, {load_end} at the end; run took {time.monotonic() - started:.0f} s).\n\n"
        "Stream: Pulse history, default FRAUD_RATE, SEED 42, on a topic of"
        f" {args.partitions} partitions. Rates in messages per second; every figure is the median over"
        f" {args.repeats} rounds made back to back on the same topic, every ratio the median of the per-round"
        " ratios. The worker (`python -m dashboard.ingest`) is judged from outside, through its group's"
        " committed offsets (method: docstring of bench/ingest.py).\n\n"
        f"{main_header}\n" + "\n".join(main_rows) + "\n\n"
        "Worker processes (`--processes N`, one group member and transactional id each):\n\n"
        f"{proc_header}\n" + "\n".join(proc_rows) + "\n\n"
        "Where the cores go over the same spans (CPU time from /proc, user + system, every thread; the worker's"
        " processes with their children, the broker's Java process, and the whole machine's busy time; medians"
        " of rounds):\n\n"
        f"{cpu_table}\n\n"
        "Ceiling: the plain loops tried (each consumes the whole topic and parses every value):\n\n"
        + "\n\n".join(text for _, text, _ in results)
        + "\n\nTargets (2 cores):\n\n"
        + "\n".join(targets)
        + "\n"
    )
    print("\n" + body)
    if args.write:
        write_section("ingest", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
