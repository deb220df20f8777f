"""Fraud detector benchmark: cost per event of the detectors in the repo, decoding excluded.

    python bench/fraud.py [--events 200000] [--minutes 200,10080] [--customers 1000] [--fraud-rate 0.02]
                          [--repeat 7] [--write]

Generates a seeded Pulse history with the pure functions (no Kafka): by
default 200,000 events over 200 minutes (1,000 events/min on average, with
the daily profile), 1,000 customers, 2% of events in injected fraud patterns,
1% invalid. Every message is decoded once, as the ingest worker would (msgspec
fast path, else the full check), into detector inputs; then a fresh
detector observes all of them. Two implementations, both in the repo:

  single-rule: VelocityDetector, GeoDetector and AmountDetector, each with its
      own window, each observing every event (the rules as written);
  FraudDetector: the three over one shared window with exact shortcuts (what
      the ingest worker runs; a unit test checks it raises the same alerts).

They run in turn, --repeat times each (paired, alternating which goes first);
the figure is the median CPU time of this process per event (the cost, less
sensitive than wall time to other work on the machine), the ratio the median
of the paired ratios. Streams: --minutes (comma-separated) of history each:
200 minutes is a dense stream (1,000 events a minute), 10,080 (a week, the
Pulse default's span) a sparse one where windows empty between a customer's
events. With --write, replaces the fraud section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import write_section  # noqa: E402
from dashboard.core.settings import Settings  # noqa: E402
from dashboard.core.validation import check, decode_plain  # noqa: E402
from dashboard.fraud import FraudDetector, TransactionLike, detector_input, plain_input  # noqa: E402
from dashboard.fraud.amount import AmountDetector  # noqa: E402
from dashboard.fraud.geo import GeoDetector  # noqa: E402
from dashboard.fraud.velocity import VelocityDetector  # noqa: E402
from dashboard.pulse.events import Streams, history, make_factory  # noqa: E402
from dashboard.pulse.model import Population  # noqa: E402
from dashboard.pulse.profile import Profile  # noqa: E402

END_S = 1_745_669_950.0  # 2025-04-26 12:19:10 UTC, a Saturday afternoon in Tehran


def inputs(events: int, minutes: float, customers: int, fraud_rate: float) -> list[TransactionLike]:
    """Detector inputs of a seeded Pulse history, decoded the way the ingest worker decodes."""
    settings = Settings.from_env(
        {"SEED": "1", "CUSTOMER_COUNT": str(customers), "FRAUD_RATE": str(fraud_rate), "INVALID_RATE": "0.01"}
    )
    streams = Streams.from_seed(settings.seed)
    population = Population.build(settings.merchant_count, settings.customer_count, streams.population)
    factory = make_factory(settings, population, streams.history)
    profile = Profile(settings.event_rate, settings.peak_factor)
    out: list[TransactionLike] = []
    for batch in history(factory, profile, events, END_S - minutes * 60, END_S):
        for m in batch:
            plain = decode_plain(m.value, m.timestamp_ms)
            tx = plain_input(plain) if plain is not None else detector_input(check(m.value, m.timestamp_ms))
            if tx is not None:
                out.append(tx)
    return out


def combined(txs: list[TransactionLike]) -> tuple[float, Counter[str]]:
    """CPU seconds for a fresh FraudDetector to observe `txs`, and the alerts by rule."""
    detector = FraudDetector()
    observe = detector.observe
    rules: Counter[str] = Counter()
    cpu = time.process_time()
    for tx in txs:
        for alert in observe(tx):
            rules[alert.rule] += 1
    return time.process_time() - cpu, rules


def single_rule(txs: list[TransactionLike]) -> tuple[float, Counter[str]]:
    """CPU seconds for the three single-rule detectors to observe `txs` in turn, and the alerts by rule."""
    observers = [VelocityDetector().observe, GeoDetector().observe, AmountDetector().observe]
    rules: Counter[str] = Counter()
    cpu = time.process_time()
    for tx in txs:
        for observe in observers:
            alert = observe(tx)
            if alert is not None:
                rules[alert.rule] += 1
    return time.process_time() - cpu, rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--minutes", default="200,10080", help="history spans to run, comma-separated")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--fraud-rate", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    load_start = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = []
    for minutes in [float(m) for m in args.minutes.split(",")]:
        txs = inputs(args.events, minutes, args.customers, args.fraud_rate)
        single: list[float] = []
        both: list[float] = []
        alerts: dict[str, Counter[str]] = {}
        for i in range(args.repeat):
            order = [("single", single_rule, single), ("combined", combined, both)]
            for name, run, times in order if i % 2 == 0 else order[::-1]:
                seconds, alerts[name] = run(txs)
                times.append(seconds / len(txs) * 1e6)
        ratio = statistics.median(b / a for a, b in zip(single, both, strict=True))
        same = alerts["single"] == alerts["combined"]
        found = ", ".join(f"{rule} {n}" for rule, n in sorted(alerts["combined"].items())) or "none"
        rows.append(
            f"| {len(txs):,} events over {minutes:g} min | {statistics.median(single):.2f} |"
            f" **{statistics.median(both):.2f}** | {ratio:.2f} | {found}"
            f"{'' if same else ' (single-rule: ' + str(dict(alerts['single'])) + ')'} |"
        )
        print(rows[-1], flush=True)
    table = (
        "| stream | single-rule detectors µs/event | FraudDetector µs/event | FraudDetector / single-rule |"
        " alerts (identical in both unless noted) |\n|---|---|---|---|---|\n" + "\n".join(rows)
    )
    command = (
        f"python bench/fraud.py --events {args.events} --minutes {args.minutes} --customers {args.customers}"
        f" --fraud-rate {args.fraud_rate:g} --repeat {args.repeat}"
    )
    body = (
        "## Fraud detectors\n\n"
        f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M')}; load average {load_start} at the start,"
        f" {' / '.join(f'{x:.1f}' for x in os.getloadavg())} at the end). Both implementations are in the repo;"
        f" median CPU µs per event over {args.repeat} paired runs each, decoding excluded (method in the"
        " docstring of bench/fraud.py). Their cost inside the worker is the `detectors' cost` column of the"
        " ingest table.\n\n" + table + "\n"
    )
    print(body)
    if args.write:
        write_section("fraud", body)


if __name__ == "__main__":
    main()
