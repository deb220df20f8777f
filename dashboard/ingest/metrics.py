"""Prometheus metrics and a health check for the ingest worker, on METRICS_PORT.

`WorkerMetrics(worker)` reads the worker's counters at scrape time (a custom
collector over `worker.stats`: committed work only, so the counters agree
with what readers of the output topics see under read_committed). What only
the worker's thread may touch, the consumer's positions and the fraud
detectors, it samples in `tick(consumer, now)`, which the worker calls once
per loop turn (cheap: at most one sample per SAMPLE_EVERY seconds, from
librdkafka's cached watermarks, no request). Every WorkerMetrics has its own
CollectorRegistry, so one process (a test) can run several workers.

`serve(metrics, address, port)` starts a small HTTP server on a daemon thread:
`/metrics` in the Prometheus text format, `/healthz` 200 while the loop runs
(a tick within HEARTBEAT_S) and work does not wait for a commit longer than
COMMIT_S (lag with no commit for that long), else 503 with the reason.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from dashboard.ingest.worker import IngestWorker

logger = logging.getLogger(__name__)

PREFIX = "darooghe_ingest"
SAMPLE_EVERY = 1.0  # seconds between samples of lag and fraud state
HEARTBEAT_S = 30.0  # no loop turn for this long: unhealthy (stuck in a call, or stopped)
COMMIT_S = 60.0  # messages waiting and no commit for this long: unhealthy


@dataclass
class _Sample:
    """What tick() saw on the worker's thread; replaced whole, read by the server thread."""

    at: float | None = None  # clock() of the latest tick
    lag: dict[int, int] = field(default_factory=dict)  # partition -> high watermark minus position
    fraud_state: dict[str, int] = field(default_factory=dict)  # FraudDetector.held() kind -> sum over partitions
    stopped: bool = False


class WorkerMetrics(Collector):
    """The worker's metrics in a registry of their own; see the module docstring."""

    def __init__(self, worker: IngestWorker, clock: Callable[[], float] | None = None) -> None:
        self.worker = worker
        self.clock = clock or worker.clock
        self.started = self.clock()
        self._sample = _Sample()
        self._next_sample = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # -- worker thread ----------------------------------------------------------
    def tick(self, consumer: Consumer, now: float) -> None:
        """Record a loop turn; every SAMPLE_EVERY seconds also sample lag and fraud state. Worker thread only."""
        sample = self._sample
        if now < self._next_sample:
            self._sample = _Sample(now, sample.lag, sample.fraud_state)
            return
        self._next_sample = now + SAMPLE_EVERY
        self._sample = _Sample(now, self._lag(consumer, sample.lag), self._fraud_state())

    def stopped(self) -> None:
        """Record that the loop ended (healthz turns 503)."""
        self._sample = _Sample(self._sample.at, self._sample.lag, self._sample.fraud_state, stopped=True)

    def _lag(self, consumer: Consumer, previous: dict[int, int]) -> dict[int, int]:
        topic = self.worker.settings.transactions_topic
        try:
            positions = consumer.position([tp for tp in consumer.assignment() if tp.topic == topic])
        except KafkaException:
            return previous
        lag = {}
        for tp in positions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), cached=True)
            if high < 0:
                continue  # no fetch response yet
            lag[tp.partition] = max(0, high - (tp.offset if tp.offset >= 0 else low))
        return lag

    def _fraud_state(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for detector in list(self.worker.detectors.by_partition.values()):
            for name, value in detector.held().items():  # O(1): sampled every second in the worker's thread
                total[name] = total.get(name, 0) + value
        return total

    # -- server thread ----------------------------------------------------------
    def health(self) -> tuple[bool, str]:
        """Return (healthy, reason): the loop turned lately, and no work waits long for a commit."""
        now, sample, stats = self.clock(), self._sample, self.worker.stats
        if sample.stopped:
            return False, "the worker loop has stopped"
        if sample.at is None:
            return False, "the worker loop has not started"
        if now - sample.at > HEARTBEAT_S:
            return False, f"no loop turn for {now - sample.at:.0f} s"
        since = now - (stats.last_commit_at if stats.last_commit_at is not None else self.started)
        waiting = sum(sample.lag.values())
        if waiting and since > COMMIT_S:
            return False, f"{waiting} messages waiting and no commit for {since:.0f} s"
        return True, f"ok: last commit {since:.1f} s ago, lag {waiting}"

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families, read from the worker's counters and the latest sample."""
        stats, sample, now = self.worker.stats, self._sample, self.clock()

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)

        yield counter("messages_consumed", "transaction messages consumed and committed", stats.messages)
        yield counter("invalid_messages", "committed messages that violated at least one rule", stats.invalid)
        by_code = CounterMetricFamily(
            f"{PREFIX}_invalid_by_code", "committed violations by error code", labels=["code"]
        )
        for code, n in sorted(dict(stats.by_code).items()):
            by_code.add_metric([code], n)
        yield by_code
        yield counter("error_records_written", "records committed to the error log", stats.records)
        yield counter("fraud_alerts_written", "alerts committed to the fraud alert topic", stats.alerts)
        txns = CounterMetricFamily(f"{PREFIX}_transactions", "Kafka transactions by outcome", labels=["outcome"])
        txns.add_metric(["committed"], stats.transactions)
        txns.add_metric(["aborted"], stats.aborted)
        yield txns
        lag = GaugeMetricFamily(
            f"{PREFIX}_consumer_lag", "messages behind the high watermark, per partition", labels=["partition"]
        )
        for p, n in sorted(sample.lag.items()):
            lag.add_metric([str(p)], n)
        yield lag
        since = now - (stats.last_commit_at if stats.last_commit_at is not None else self.started)
        yield GaugeMetricFamily(
            f"{PREFIX}_seconds_since_last_commit", "seconds since the last committed transaction (or start)", since
        )
        state = GaugeMetricFamily(
            f"{PREFIX}_fraud_state_size", "entries the fraud detectors hold, by kind", labels=["kind"]
        )
        for kind, n in sorted(sample.fraud_state.items()):
            state.add_metric([kind], n)
        yield state
        healthy, _ = self.health()
        yield GaugeMetricFamily(f"{PREFIX}_healthy", "1 when /healthz answers 200", 1.0 if healthy else 0.0)


class _Handler(BaseHTTPRequestHandler):
    metrics: WorkerMetrics  # set on the subclass made by serve()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            healthy, reason = self.metrics.health()
            self._send(200 if healthy else 503, (reason + "\n").encode(), "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found: try /metrics or /healthz\n", "text/plain; charset=utf-8")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("metrics: " + format, *args)


def serve(metrics: WorkerMetrics, address: str, port: int) -> ThreadingHTTPServer:
    """Serve /metrics and /healthz on (address, port) from a daemon thread; return the server (shutdown() stops it).

    Port 0 picks a free port: read it from `server.server_address`.
    """
    handler = type("MetricsHandler", (_Handler,), {"metrics": metrics})
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="darooghe-metrics", daemon=True)
    thread.start()
    logger.info("metrics on http://%s:%d/metrics and /healthz", *server.server_address[:2])
    return server
