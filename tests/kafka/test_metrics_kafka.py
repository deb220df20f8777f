"""The ingest worker's Prometheus endpoint, scraped while it runs on the real broker.

Counters must equal what was produced: messages, invalid ones by code, error
records and alerts (both compared with the topics read with read_committed),
transactions committed; lag drops to 0 per partition; /healthz answers 200.
"""

from __future__ import annotations

import collections
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.kafka.kafkatools import create_topic, produce, read_all, start_module
from tests.kafka.localkafka import wait_for
from tests.kafka.test_ingest_kafka import expected_and_messages

pytestmark = pytest.mark.kafka

MESSAGES = 3000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return {(sample name, sorted labels): value} of the worker's /metrics (empty while it does not answer)."""
    status, text = get(f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_scraped_counters_match_what_was_produced(kafka_env: dict[str, str], tmp_path: Path) -> None:
    bootstrap, topic = kafka_env["KAFKA_BOOTSTRAP_SERVERS"], kafka_env["TRANSACTIONS_TOPIC"]
    create_topic(bootstrap, topic)
    messages, codes = expected_and_messages(MESSAGES)
    produce(bootstrap, topic, messages)
    port = free_port()
    env = dict(kafka_env, METRICS_PORT=str(port))
    log = tmp_path / "ingest.log"
    worker = start_module("dashboard.ingest", env, "--processes", "1", "--transactional-id", f"metrics-{port}", log=log)
    try:
        done = wait_for(
            "the worker to commit every message",
            lambda: (m := scrape(port)).get(("darooghe_ingest_messages_consumed_total", ())) == MESSAGES and m,
            timeout=90,
        )
        # Lag and fraud state are sampled every second: wait for a sample taken after the last batch.
        metrics = wait_for(
            "lag 0 on every partition and the fraud state of 97 customers",
            lambda: (
                (m := scrape(port))
                and [v for (name, _), v in m.items() if name == "darooghe_ingest_consumer_lag"] == [0.0] * 3
                and m.get(("darooghe_ingest_fraud_state_size", (("kind", "averages"),))) == 97  # cust_0 .. cust_96
                and m
            ),
            timeout=15,
        )
        status, body = get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and body.startswith("ok"), body
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    assert worker.returncode == 0, log.read_text()[-2000:]

    records = read_all(bootstrap, kafka_env["ERROR_TOPIC"])
    alerts = read_all(bootstrap, kafka_env["FRAUD_TOPIC"])
    invalid_messages = sum(1 for i in range(MESSAGES) if 1 <= i % 20 <= 6)
    by_code = {
        dict(labels)["code"]: value
        for (name, labels), value in metrics.items()
        if name == "darooghe_ingest_invalid_by_code_total"
    }
    assert by_code == {code: float(n) for code, n in collections.Counter(codes).items()}
    assert metrics[("darooghe_ingest_invalid_messages_total", ())] == invalid_messages
    assert metrics[("darooghe_ingest_error_records_written_total", ())] == len(codes) == len(records)
    assert metrics[("darooghe_ingest_fraud_alerts_written_total", ())] == len(alerts)
    assert metrics[("darooghe_ingest_transactions_total", (("outcome", "committed"),))] >= 1
    assert metrics[("darooghe_ingest_transactions_total", (("outcome", "aborted"),))] == 0
    assert metrics[("darooghe_ingest_seconds_since_last_commit", ())] < 30
    assert metrics[("darooghe_ingest_fraud_state_size", (("kind", "window_customers"),))] > 0
    assert metrics[("darooghe_ingest_healthy", ())] == 1
    assert done[("darooghe_ingest_messages_consumed_total", ())] == MESSAGES
