"""Ingest worker throughput on a replicated topic (3 nodes, replication 3) next to a single broker.

    LOCAL_KAFKA_DIR=/tmp/lk-bench3 KAFKA_NODES=3 KAFKA_PORT=29092 scripts/local-kafka start
    python bench/replicated.py --single localhost:9092 \\
        --cluster localhost:29092,localhost:29093,localhost:29094 [--events 200000] [--repeats 3] [--write]

The statistic is bench/ingest.py's (b), computed by its own functions: Pulse
pre-produces the events (history mode, INVALID_RATE 0.01, seed 42) to a
fresh topic of PARTITIONS partitions, then `python -m dashboard.ingest
--processes 1` with fraud detectors, fresh group per run, reads it all, judged
from outside through its group's committed offsets (first commit to last);
the median of --repeats runs. On the cluster every topic
(input, error log, fraud alerts) has TOPIC_REPLICATION_FACTOR=3 and
min.insync.replicas 2, and the worker's transactional producer writes with
acks=all, so each commit waits for two replicas. The two targets alternate
run by run, so machine load hits both alike; the 1-minute load average is
reported. With --write, replaces the `replicated` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import pre_produce, worker  # noqa: E402
from bench.report import write_section  # noqa: E402
from dashboard.core.settings import Settings  # noqa: E402
from dashboard.kafka.admin import delete_topics, message_count  # noqa: E402

INVALID_RATE = 0.01
PARTITIONS = 6  # as the ingest table's topic


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def replication(settings: Settings) -> None:
    """Make the subprocesses bench/ingest.py starts (Pulse, the worker) create topics with `settings`' replication."""
    os.environ["TOPIC_REPLICATION_FACTOR"] = str(settings.topic_replication)
    os.environ["TOPIC_MIN_INSYNC_REPLICAS"] = str(settings.min_insync)


def prepare(settings: Settings, events: int) -> tuple[str, int]:
    """Pre-produce `events` with Pulse to a fresh topic of `settings`' replication; return (topic, messages)."""
    topic = f"bench.replicated.{uuid.uuid4().hex[:8]}"
    replication(settings)
    pre_produce(settings, topic, events, INVALID_RATE, PARTITIONS)
    return topic, message_count(settings, topic)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", required=True, help="bootstrap of a single broker")
    parser.add_argument("--cluster", required=True, help="bootstrap of a three-node cluster")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write the results into BENCHMARKS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    base = Settings.from_env()
    targets = {
        "single broker, replication 1": replace(base, bootstrap_servers=args.single, topic_replication=1),
        "3 nodes, replication 3, min.insync.replicas 2": replace(
            base, bootstrap_servers=args.cluster, topic_replication=3, topic_min_insync=2
        ),
    }
    load_start, started = load(), time.monotonic()
    topics = {}
    for name, settings in targets.items():
        print(f"== {name}: pre-producing {args.events} events", flush=True)
        topics[name] = prepare(settings, args.events)
    rates: dict[str, list[float]] = {name: [] for name in targets}
    for i in range(args.repeats):
        for name, settings in targets.items():
            topic, total = topics[name]
            replication(settings)
            rates[name].append(worker(settings, topic, total))
            print(f"  run {i + 1}: {name}: {rates[name][-1]:,.0f} msg/s (load {load():.1f})", flush=True)
    for name, settings in targets.items():
        delete_topics(settings, [topics[name][0]])
    load_end, took = load(), time.monotonic() - started
    single, replicated = (statistics.median(r) for r in rates.values())
    rows = [
        f"| {name} | {statistics.median(r):,.0f} | {', '.join(f'{x:,.0f}' for x in r)} |" for name, r in rates.items()
    ]
    ratio = f"\nReplicated / single: {replicated / single:.2f}."
    table = "\n".join(["| target | (b) worker, msg/s (median) | runs |", "|---|---|---|", *rows, ratio])
    print("\n" + table)
    print(f"load average {load_start:.1f} at the start, {load_end:.1f} at the end; {took:.0f} s")
    if args.write:
        write_section(
            "replicated",
            "## Ingest worker on a replicated topic\n\n"
            "Statistic (b) of the ingest table: `python -m dashboard.ingest --processes 1` with fraud detectors,"
            " judged from outside through its group's committed offsets (first commit to last), INVALID_RATE"
            f" {INVALID_RATE}, {PARTITIONS} partitions, fresh group per run, median of {args.repeats} runs;"
            " the two targets alternate run by run. On the cluster the input, error and fraud topics have"
            " replication 3 and min.insync.replicas 2 (commits wait for two replicas, acks=all). All nodes"
            " and the worker share this machine's 2 cores. The single-broker row is the same statistic as (b) at"
            " INVALID_RATE 0.01 in the table above, measured here under the same load as the cluster row;"
            " compare the rows of this table with each other.\n\n"
            f"Command: `python bench/replicated.py --single ... --cluster ... --events {args.events}"
            f" --repeats {args.repeats}` ({time.strftime('%Y-%m-%d')}, 2 cores; 1-minute load average"
            f" {load_start:.1f} at the start, {load_end:.1f} at the end: other work shared the machine)\n\n"
            f"{table}\n",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
