"""`python -m dashboard.ingest`: run the validating ingest worker."""

from __future__ import annotations

import argparse
import os
import sys

from dashboard.core.cli import load_settings, setup_logging, stop_on_signals
from dashboard.ingest.processes import run_processes
from dashboard.ingest.worker import IngestWorker, WorkerError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the worker until stopped or idle; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m dashboard.ingest", description=__doc__)
    parser.add_argument(
        "--until-idle",
        type=float,
        metavar="SECONDS",
        help="exit once the group has committed every partition up to its end and nothing arrived for SECONDS",
    )
    parser.add_argument(
        "--transactional-id",
        help="stable transactional id, also the static group member id (default: unique per process);"
        " with several processes, process i uses ID-i",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes, each its own group member and transactional id (default: the number of cores)",
    )
    parser.add_argument("--no-fraud", action="store_true", help="validate only; run no fraud detectors")
    args = parser.parse_args(argv)
    if args.until_idle is not None and args.until_idle <= 0:
        parser.error("--until-idle must be positive")
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    setup_logging()
    settings = load_settings("ingest")
    if args.processes > 1:
        return run_processes(
            args.processes, args.transactional_id, args.until_idle, not args.no_fraud, stop_on_signals()
        )
    worker = IngestWorker(
        settings, args.transactional_id, args.until_idle, stop_on_signals(), detect_fraud=not args.no_fraud
    )
    try:
        worker.run()
    except WorkerError as exc:  # its open transaction was aborted: nothing half-done is committed
        print(f"ingest: stopped: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
