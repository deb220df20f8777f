"""`python -m dashboard.ingest`: run the validating ingest worker."""

from __future__ import annotations

import argparse
import logging
import sys

from dashboard.core.cli import load_settings, setup_logging, stop_on_signals
from dashboard.core.settings import SettingsError
from dashboard.ingest.metrics import WorkerMetrics, serve
from dashboard.ingest.worker import IngestWorker, WorkerError
from dashboard.kafka.config import preflight


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
        help="stable transactional id, also the static group member id (default: unique per process)",
    )
    parser.add_argument("--no-fraud", action="store_true", help="validate only; run no fraud detectors")
    args = parser.parse_args(argv)
    if args.until_idle is not None and args.until_idle <= 0:
        parser.error("--until-idle must be positive")
    setup_logging()
    settings = load_settings("ingest", preflight)
    worker = IngestWorker(
        settings, args.transactional_id, args.until_idle, stop_on_signals(), detect_fraud=not args.no_fraud
    )
    log = logging.getLogger("dashboard.ingest")
    server = None
    if settings.metrics_port is not None:
        metrics = worker.metrics = WorkerMetrics(worker)
        try:
            server = serve(metrics, settings.metrics_address, settings.metrics_port)
        except OSError as exc:
            where = f"{settings.metrics_address}:{settings.metrics_port}"
            log.error("ingest: METRICS_PORT=%d: cannot listen on %s (%s)", settings.metrics_port, where, exc.strerror)
            return 2
    try:
        worker.run()
    except SettingsError as exc:  # the cluster cannot hold the topics as configured
        log.error("ingest: %s", exc)
        return 2
    except WorkerError as exc:  # its open transaction was aborted: nothing half-done is committed
        print(f"ingest: stopped: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
