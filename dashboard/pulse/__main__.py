"""`python -m dashboard.pulse`: generate the Darooghe transaction stream (history, then live).

Settings come from the environment (EVENT_RATE, PEAK_FACTOR, ..., SEED); see
dashboard/settings.py. SIGINT or SIGTERM stops it cleanly after a flush.
Exit codes: 0 done or stopped, 1 Kafka failure or undelivered messages, 2 bad setting (or a cluster
that cannot hold the topic with TOPIC_REPLICATION_FACTOR).
"""

from __future__ import annotations

import argparse
import logging

from confluent_kafka import KafkaException

from dashboard.core.cli import load_settings, setup_logging, stop_on_signals
from dashboard.core.settings import SettingsError
from dashboard.kafka.config import preflight
from dashboard.pulse.producer import LIBRDKAFKA_LOGGER
from dashboard.pulse.runner import Options, run

logger = logging.getLogger("dashboard.pulse")


def parse_args(argv: list[str] | None = None) -> Options:
    """Parse the command line into run Options (argparse exits 2 on bad usage)."""
    parser = argparse.ArgumentParser(prog="python -m dashboard.pulse", description=__doc__)
    phase = parser.add_mutually_exclusive_group()
    phase.add_argument("--no-history", action="store_true", help="write no history; stream live only")
    phase.add_argument("--history-only", action="store_true", help="write the history, then exit")
    parser.add_argument(
        "--max-events", type=int, metavar="N", help="stop after N live events (history not counted; default: run on)"
    )
    parser.add_argument(
        "--rate-multiplier",
        type=float,
        default=1.0,
        metavar="X",
        help="multiply the live arrival rate by X, e.g. for load tests (default 1)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also show librdkafka's own log lines")
    args = parser.parse_args(argv)
    if args.max_events is not None and args.max_events < 0:
        parser.error("--max-events must be >= 0")
    if not args.rate_multiplier > 0:
        parser.error("--rate-multiplier must be positive")
    if args.history_only and args.max_events is not None:
        parser.error("--max-events counts live events; it makes no sense with --history-only")
    LIBRDKAFKA_LOGGER.setLevel(logging.DEBUG if args.verbose else logging.CRITICAL)
    return Options(
        history=not args.no_history,
        live=not args.history_only,
        max_events=args.max_events,
        rate_multiplier=args.rate_multiplier,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the generator; return the exit code."""
    options = parse_args(argv)
    setup_logging()
    settings = load_settings("pulse", preflight)
    stop = stop_on_signals()
    try:
        counts = run(settings, options, stop)
    except SettingsError as exc:  # the cluster cannot hold the topic as configured
        logger.error("pulse: %s", exc)
        return 2
    except (KafkaException, TimeoutError) as exc:
        logger.error("pulse: Kafka administration failed: %s", exc)
        return 1
    return 0 if counts.failed == 0 and counts.undelivered == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
