"""Soak benchmark: millions of messages with millions of distinct keys through the worker and the dashboard's feeds.

    python bench/soak.py [--messages 1000000] [--capacity 20000] [--step-ms 10] [--max-customers 50000]
                         [--rate 0] [--sample 2] [--json FILE]

Against the real local broker (KAFKA_BOOTSTRAP_SERVERS, default localhost:9092),
on fresh uuid topics. An ingest worker (`python -m dashboard.ingest`, fraud
detectors on, FRAUD_MAX_CUSTOMERS=`--max-customers`) and, in this process, the dashboard's
live source (the transactions `Feed` into a RingBuffer of `--capacity`, the
`RollupFeed` into `Rollups`, snapshots taken as pages would) consume what a
child process produces: `--messages` transactions whose customer, merchant,
device model and failure reason strings are all distinct (event times advance
`--step-ms`, 10 ms by default, a message, from a day ago, so the fraud windows
and the per-minute aggregates see a realistic clock; Kafka timestamp = event
time). A small step puts many distinct customers in the fraud windows at once:
0.1 ms puts all of a million in the last 6 minutes.

Two phases of the same size, each produced once the previous one is
through: the warm-up (the first half of the messages), then the second half.
A phase is through when the feed has read and the history aggregated all its
messages; QUIET_S later, with no burst's fetch buffers held, one more sample
is the phase's figure. Both phases are the same burst, so the heap's
high-water mark is reached in the first: memory is bounded when the end's
figure is the warm-up's though as many new distinct keys again came after
it. Samples (resident memory, VmRSS of /proc, of this process, the app, and
of the worker) every `--sample` seconds also give the peaks. It prints them
and the figures; --json writes them.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import pipeline_env  # noqa: E402

QUIET_S = 2.0  # wait after catching up before the like-for-like sample


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process in MB (VmRSS of /proc), 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def produce(
    bootstrap: str, topic: str, n: int, warm: int, start_ms: int, step_ms: float, rate: float, phases: Any
) -> None:
    """Child process: produce `n` transactions with all-distinct strings (see the module docstring).

    The first `warm` once `phases[0]` (an Event) is set, the rest once `phases[1]` is.
    """
    import orjson  # noqa: PLC0415
    from confluent_kafka import Producer  # noqa: PLC0415

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "compression.type": "lz4"})
    tag = uuid.uuid4().hex[:6]
    for i in range(n):
        if i in (0, warm):
            producer.flush(120)
            if not phases[i > 0].wait(600):
                raise SystemExit("soak producer: never told to go on")
            started, first = time.monotonic(), i
        ts = start_ms + int(i * step_ms)
        amount = 1000 + i % 100_000
        customer = f"cust_{tag}_{i}"
        ev: dict[str, object] = {
            "transaction_id": f"{tag}-{i:012d}",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1000)) + f".{ts % 1000:03d}Z",
            "customer_id": customer,
            "merchant_id": f"merch_{tag}_{i}",
            "merchant_category": ("retail", "food_service", "entertainment", "transportation", "government")[i % 5],
            "payment_method": ("online", "pos", "mobile", "nfc")[i % 4],
            "amount": amount,
            "location": {"lat": 35.0 + (i % 1000) / 1000, "lng": 51.0 + (i % 777) / 777},
            "device_info": {"os": "Android", "app_version": "1.0", "device_model": f"model_{i}"}
            if i % 4 in (0, 2)
            else {},
            "status": "declined" if i % 20 == 0 else "approved",
            "commission_type": ("flat", "progressive", "tiered")[i % 3],
            "commission_amount": 20,
            "vat_amount": 90,
            "total_amount": amount + 110,
            "customer_type": "individual",
            "risk_level": 2,
            "failure_reason": f"reason_{i}" if i % 20 == 0 else None,
        }
        while True:
            try:
                producer.produce(topic, orjson.dumps(ev), customer.encode(), timestamp=ts)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if rate > 0 and i % 1000 == 0:
            ahead = (i - first) / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.flush(120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--capacity", type=int, default=20_000, help="BUFFER_CAPACITY of the dashboard")
    parser.add_argument("--step-ms", type=float, default=10.0, help="event time between messages (ms)")
    parser.add_argument("--max-customers", type=int, default=50_000, help="the worker's FRAUD_MAX_CUSTOMERS")
    parser.add_argument("--rate", type=float, default=0, help="messages per second to produce (0: as fast as possible)")
    parser.add_argument("--sample", type=float, default=2.0, help="seconds between memory samples")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    tag = uuid.uuid4().hex[:8]
    env = pipeline_env(
        bootstrap,
        f"soak.transactions.{tag}",
        tag,
        BUFFER_CAPACITY=str(args.capacity),
        FRAUD_MAX_CUSTOMERS=str(args.max_customers),
        PYTHONPATH=str(ROOT),
    )
    # Fork the producer before the dashboard's modules are loaded: its heap is not ours.
    start_ms = int(time.time() * 1000) - 86_400_000 + 60_000
    ctx = multiprocessing.get_context("fork")

    from dashboard.core.settings import Settings  # noqa: PLC0415
    from dashboard.kafka.admin import delete_topics, ensure_topics  # noqa: PLC0415

    settings = Settings.from_env(env)
    topics = [settings.transactions_topic, settings.error_topic, settings.fraud_topic, settings.rollups_topic]
    ensure_topics(settings, topics)
    warm_n = args.messages // 2
    phases = (ctx.Event(), ctx.Event())
    producer = ctx.Process(
        target=produce,
        args=(bootstrap, settings.transactions_topic, args.messages, warm_n, start_ms, args.step_ms, args.rate, phases),
    )
    producer.start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "dashboard.ingest", "--processes", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    from dashboard.feed.rollups import RollupFeed  # noqa: PLC0415
    from dashboard.feed.transactions import Feed  # noqa: PLC0415
    from dashboard.store.buffer import RingBuffer  # noqa: PLC0415

    gc.freeze()  # as the app does (ui.boot)
    feed = Feed(settings, RingBuffer(args.capacity))
    history = RollupFeed(settings)
    feed.start()
    history.start()
    samples: list[dict[str, float]] = []
    quiet: list[dict[str, float]] = []
    started = time.monotonic()

    def sample() -> dict[str, float]:
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}")
        if time.monotonic() - started > 3600:
            raise SystemExit("not done within an hour")
        feed.buffer.snapshot()  # as a page would
        point = {
            "t": round(time.monotonic() - started, 1),
            "consumed": feed.health().messages_total,
            "aggregated": history.rollups.snapshot().added,
            "app_mb": round(rss_mb(), 1),
            "worker_mb": round(rss_mb(worker.pid), 1),
        }
        print(
            f"{point['t']:7.1f} s  feed {point['consumed']:>10,}  aggregated {point['aggregated']:>10,}  "
            f"app {point['app_mb']:7.1f} MB  worker {point['worker_mb']:7.1f} MB",
            flush=True,
        )
        return point

    def through(count: int) -> None:
        """Sample until the feed has read and the history aggregated `count` messages, then once more when quiet."""
        while True:
            time.sleep(args.sample)
            point = sample()
            samples.append(point)
            if point["consumed"] >= count and point["aggregated"] >= count:
                break
        time.sleep(QUIET_S)  # the fetch buffers of the last burst returned
        point = sample()
        samples.append(point)
        quiet.append(point)

    try:
        # Every message through the feed: produce only once it has its partitions.
        while feed.health().partitions == 0:
            if time.monotonic() - started > 60:
                raise SystemExit("the feed found no partitions within 60 s")
            time.sleep(0.1)
        for phase, count in zip(phases, (warm_n, args.messages), strict=True):
            phase.set()
            through(count)
    finally:
        feed.stop()
        history.stop()
        worker.terminate()
        worker.wait(30)
        producer.join(5)
        delete_topics(settings, topics)

    warm, end = quiet
    after = [s for s in samples if s["t"] >= warm["t"]]
    figures = {
        "messages": args.messages,
        "capacity": args.capacity,
        "seconds": end["t"],
        "app_mb_first": samples[0]["app_mb"],
        "app_mb_max": max(s["app_mb"] for s in samples),
        "app_mb_after_warmup": warm["app_mb"],
        "app_mb_end": end["app_mb"],
        "app_mb_max_after_warmup": max(s["app_mb"] for s in after),
        "worker_mb_after_warmup": warm["worker_mb"],
        "worker_mb_end": end["worker_mb"],
        "worker_mb_max_after_warmup": max(s["worker_mb"] for s in after),
        "buffer_dictionaries": feed.buffer.dictionary_sizes(),
        "rollup_records": history.rollups.records(),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "samples": samples}, indent=2))


if __name__ == "__main__":
    main()
