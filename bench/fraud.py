"""Fraud detector benchmark: cost per event of `FraudDetector.observe`, decoding excluded.

    python bench/fraud.py [--events 200000] [--minutes 200] [--customers 1000] [--fraud-rate 0.02] [--repeat 5]

Generates a seeded Pulse history with the pure functions (no Kafka): by
default 200,000 events over 200 minutes (1,000 events/min on average, with
the daily profile), 1,000 customers, 2% of events in injected fraud patterns,
1% invalid. Every message is decoded once, as the ingest worker would (msgspec
fast path, else the full check), into detector inputs; then a fresh
FraudDetector observes all of them, `--repeat` times, and the best run is
reported in microseconds per event: CPU time of this process (the cost, even
on a busy machine) and wall-clock time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.core.settings import Settings  # noqa: E402
from dashboard.core.validation import check, decode_plain  # noqa: E402
from dashboard.fraud import FraudDetector, TransactionLike, detector_input, plain_input  # noqa: E402
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


def run_once(txs: list[TransactionLike]) -> tuple[float, float, Counter[str]]:
    """CPU and wall seconds for a fresh detector to observe `txs`, and the alerts by rule."""
    detector = FraudDetector()
    observe = detector.observe
    rules: Counter[str] = Counter()
    cpu, wall = time.process_time(), time.perf_counter()
    for tx in txs:
        for alert in observe(tx):
            rules[alert.rule] += 1
    return time.process_time() - cpu, time.perf_counter() - wall, rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--minutes", type=float, default=200.0)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--fraud-rate", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    txs = inputs(args.events, args.minutes, args.customers, args.fraud_rate)
    runs = [run_once(txs) for _ in range(args.repeat)]
    cpu = min(r[0] for r in runs) / len(txs) * 1e6
    wall = min(r[1] for r in runs) / len(txs) * 1e6
    alerts = ", ".join(f"{rule} {n}" for rule, n in sorted(runs[0][2].items())) or "none"
    print(
        f"fraud detectors: {cpu:.2f} us/event CPU, {wall:.2f} us/event wall, over {len(txs)} events "
        f"({args.events} generated over {args.minutes:g} min, {args.customers} customers, "
        f"FRAUD_RATE {args.fraud_rate:g}; best of {args.repeat}); alerts: {alerts}"
    )


if __name__ == "__main__":
    main()
