"""`python -m dashboard.ingest`: run the validating ingest worker."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from confluent_kafka import KafkaException

from dashboard.core.cli import load_settings, setup_logging, stop_on_signals
from dashboard.core.settings import SettingsError
from dashboard.ingest.metrics import WorkerMetrics, serve
from dashboard.ingest.processes import PROCESS_INDEX_ENV, run_processes, wait_for_siblings
from dashboard.ingest.worker import IngestWorker, WorkerError
from dashboard.kafka.admin import ensure_topics, pipeline_topics
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
    settings = load_settings("ingest", preflight)
    log = logging.getLogger("dashboard.ingest")
    if args.processes > 1:
        # Create the topics once, here: a cluster that cannot hold them is one line, not one per child.
        try:
            ensure_topics(settings, pipeline_topics(settings), timeout=10)
        except SettingsError as exc:
            log.error("ingest: %s", exc)
            return 2
        except (KafkaException, TimeoutError) as exc:  # no broker yet: each child waits for it
            log.warning("ingest: topics not checked (%s); the workers will retry", exc)
        return run_processes(
            args.processes, args.transactional_id, args.until_idle, not args.no_fraud, stop_on_signals()
        )
    worker = IngestWorker(
        settings,
        args.transactional_id,
        args.until_idle,
        stop_on_signals(),
        detect_fraud=not args.no_fraud,
        before_reading=wait_for_siblings,  # started by run_processes: join the group with the others
    )
    server = None
    if settings.metrics_port is not None:
        # With --processes N, process i serves METRICS_PORT + i.
        port = settings.metrics_port + int(os.environ.get(PROCESS_INDEX_ENV, "0"))
        metrics = worker.metrics = WorkerMetrics(worker)
        try:
            server = serve(metrics, settings.metrics_address, port)
        except OSError as exc:
            where = f"{settings.metrics_address}:{port}"
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
