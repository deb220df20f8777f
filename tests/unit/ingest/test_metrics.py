"""The ingest worker's /healthz rule and HTTP server, with an injected clock.

The counters against a real worker and broker: tests/kafka/test_metrics_kafka.py.
Here a stand-in consumer reports positions and cached watermarks, so the
health rule's edges (heartbeat, commit age with work waiting) are exact.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from dashboard.core.settings import Settings
from dashboard.ingest.metrics import COMMIT_S, HEARTBEAT_S, WorkerMetrics, serve
from dashboard.ingest.replay import PartitionDetectors
from dashboard.ingest.worker import Stats


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Positions:
    """Answers the three consumer calls tick() makes: assignment, position, cached watermarks."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.position_of = {0: 10, 1: 5}
        self.high_of = {0: 10, 1: 5}

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in self.position_of]

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(self.topic, tp.partition, self.position_of[tp.partition]) for tp in tps]

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool = False) -> tuple[int, int]:
        assert cached, "tick must not send requests"
        return 0, self.high_of[tp.partition]


@pytest.fixture
def setup() -> Iterator[tuple[WorkerMetrics, Clock, Positions, Any]]:
    settings = Settings.from_env({})
    clock = Clock()
    worker = SimpleNamespace(settings=settings, stats=Stats(), detectors=PartitionDetectors(settings), clock=clock)
    metrics = WorkerMetrics(worker, clock)  # type: ignore[arg-type]
    yield metrics, clock, Positions(settings.transactions_topic), worker


def test_health_edges(setup: tuple[WorkerMetrics, Clock, Positions, Any]) -> None:
    metrics, clock, consumer, worker = setup
    assert metrics.health() == (False, "the worker loop has not started")
    metrics.tick(consumer, clock())  # type: ignore[arg-type]
    healthy, reason = metrics.health()
    assert healthy and reason.startswith("ok"), reason
    clock.now += HEARTBEAT_S  # exactly at the limit: still healthy
    assert metrics.health()[0]
    clock.now += 0.001
    assert metrics.health() == (False, f"no loop turn for {HEARTBEAT_S + 0.001:.0f} s")
    # Idle (no lag) with an old commit is healthy; lag with no commit for COMMIT_S is not.
    clock.now = 1000.0 + COMMIT_S + 5
    metrics.tick(consumer, clock())  # type: ignore[arg-type]
    assert metrics.health()[0]
    consumer.high_of[1] = 8
    clock.now += 1.0
    metrics.tick(consumer, clock())  # type: ignore[arg-type]
    assert metrics.health() == (False, f"3 messages waiting and no commit for {COMMIT_S + 6:.0f} s")
    worker.stats.last_commit_at = clock.now - 1
    assert metrics.health()[0]
    metrics.stopped()
    assert metrics.health() == (False, "the worker loop has stopped")


def test_registries_are_per_worker_and_served_over_http(setup: tuple[WorkerMetrics, Clock, Positions, Any]) -> None:
    metrics, clock, consumer, worker = setup
    other = WorkerMetrics(worker, clock)  # a second worker in the same process
    assert other.registry is not metrics.registry
    worker.stats.messages, worker.stats.by_code = 42, {"ERR_TIME": 2}
    metrics.tick(consumer, clock())  # type: ignore[arg-type]
    server = serve(metrics, "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        assert "darooghe_ingest_messages_consumed_total 42.0" in text
        assert 'darooghe_ingest_invalid_by_code_total{code="ERR_TIME"} 2.0' in text
        assert 'darooghe_ingest_consumer_lag{partition="0"} 0.0' in text
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        metrics.stopped()
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert info.value.code == 503 and info.value.read() == b"the worker loop has stopped\n"
    finally:
        server.shutdown()
        server.server_close()
