"""Shared fixtures: the real local broker's address and per-test topic names."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
# Every chart a page renders in the tests (AppTest, and the browser tests' servers, which inherit
# the environment) is validated against the Vega-Lite schema; the server skips that (ui.widgets.chart).
os.environ["DAROOGHE_CHECK_CHART_SPECS"] = "1"


@pytest.fixture(scope="session")
def bootstrap() -> str:
    """Bootstrap servers of the real broker; fails (not skips) when none answers."""
    servers = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    try:
        AdminClient({"bootstrap.servers": servers}).list_topics(timeout=15)
    except Exception as exc:  # any failure here means: no broker
        pytest.fail(f"no Kafka broker at {servers} ({exc}); start one with scripts/local-kafka start")
    return servers


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Return a maker of uuid-suffixed names for topics and groups of one test."""
    return lambda prefix: f"{prefix}.{uuid.uuid4().hex[:10]}"


@pytest.fixture
def kafka_env(bootstrap: str, unique: Callable[[str], str]) -> Iterator[dict[str, str]]:
    """Environment for a subprocess using fresh topics and group on the real broker."""
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        TRANSACTIONS_TOPIC=unique("test.transactions"),
        ERROR_TOPIC=unique("test.error_logs"),
        FRAUD_TOPIC=unique("test.fraud_alerts"),
        ROLLUPS_TOPIC=unique("test.rollups"),
        INGEST_GROUP=unique("test.ingest"),
        PYTHONPATH=str(ROOT),
    )
    yield env
