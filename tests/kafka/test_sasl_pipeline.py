"""The whole pipeline on a SASL/SCRAM-SHA-512 broker, configured only through four KAFKA_* variables.

A broker of our own (`KAFKA_SASL=1 scripts/local-kafka start`, free ports,
tmp state). Pulse writes history, the ingest worker validates it, the
dashboard's Feed (in-process) counts it: each configured only by
KAFKA_BOOTSTRAP_SERVERS plus KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISMS,
KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD. With a wrong password both CLIs
stop with one readable line (exit 2) and the feed shows the refusal as its
state; no password, right or wrong, appears in any output or log.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from dashboard.core.settings import Settings
from dashboard.feed.transactions import Feed
from dashboard.store.buffer import RingBuffer
from dashboard.views import health
from tests.kafka.kafkatools import ROOT, run_module
from tests.kafka.localkafka import LocalKafka, wait_for
from tests.kafka.test_local_kafka_sasl import client_settings

pytestmark = pytest.mark.kafka

HISTORY = 3000


@pytest.fixture(scope="module")
def sasl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Start the SASL broker; yield the client settings it printed."""
    kafka = LocalKafka(tmp_path_factory.mktemp("sasl") / "kafka", nodes=1, KAFKA_SASL="1")
    kafka.env.pop("KAFKA_SASL_USERNAME", None)
    kafka.env.pop("KAFKA_SASL_PASSWORD", None)
    try:
        yield client_settings(kafka.run("start").stdout)
    finally:
        kafka.run("stop", check=False, timeout=120)


def pipeline_env(client: dict[str, str], password: str) -> dict[str, str]:
    """The environment of a process: no KAFKA_* but the five client settings, fresh topics and group."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
    u = uuid.uuid4().hex[:8]
    env.update(
        client,
        KAFKA_SASL_PASSWORD=password,
        TRANSACTIONS_TOPIC=f"sasl.transactions.{u}",
        ERROR_TOPIC=f"sasl.error_logs.{u}",
        FRAUD_TOPIC=f"sasl.fraud_alerts.{u}",
        ROLLUPS_TOPIC=f"sasl.rollups.{u}",
        INGEST_GROUP=f"sasl.ingest.{u}",
        PYTHONPATH=str(ROOT),
    )
    assert sorted(k for k in env if k.startswith("KAFKA_")) == [
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SASL_MECHANISMS",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SECURITY_PROTOCOL",
    ]
    return env


def committed_records(settings: Settings, topic: str) -> int:
    """Count the records of `topic` with read_committed, through the same SASL settings."""
    consumer = Consumer(settings.kafka_config(group_id=f"sasl-reader-{uuid.uuid4().hex}", enable_auto_commit=False))
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        count, idle_since = 0, time.monotonic()
        while time.monotonic() - idle_since < 3:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    count += 1
                    idle_since = time.monotonic()
        return count
    finally:
        consumer.close()


def test_pipeline_on_a_sasl_broker_and_a_wrong_password(
    sasl: dict[str, str], caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO)
    password = sasl["KAFKA_SASL_PASSWORD"]
    wrong = f"wrong-{uuid.uuid4().hex[:12]}"
    env = pipeline_env(sasl, password)
    settings = Settings.from_env(env)
    outputs: list[str] = []

    pulse = run_module("dashboard.pulse", dict(env, HISTORY_EVENTS=str(HISTORY), SEED="11"), "--history-only")
    outputs.append(pulse.stdout + pulse.stderr)
    assert pulse.returncode == 0, outputs[-1][-2000:]
    assert f"produced {HISTORY} (history {HISTORY}, live 0), delivered {HISTORY}, failed 0" in outputs[-1]

    ingest = run_module("dashboard.ingest", env, "--processes", "1", "--until-idle", "3")
    outputs.append(ingest.stdout + ingest.stderr)
    assert ingest.returncode == 0, outputs[-1][-2000:]
    stopped = re.search(r"stopped: (\d+) messages, (\d+) invalid, (\d+) error records", outputs[-1])
    assert stopped is not None, outputs[-1][-2000:]
    assert int(stopped[1]) == HISTORY and int(stopped[2]) > 0
    assert committed_records(settings, settings.error_topic) == int(stopped[3])

    feed = Feed(settings, RingBuffer(HISTORY * 2))
    feed.start()
    try:
        report = wait_for(
            "the feed to count every event", lambda: (h := feed.health()).messages_total == HISTORY and h, 60
        )
        assert report.state == "connected" and report.invalid_total == int(stopped[2])
    finally:
        feed.stop()

    # A wrong password: one readable line and exit 2 from each CLI, a state in the dashboard.
    bad = pipeline_env(sasl, wrong)
    for module in ("dashboard.pulse", "dashboard.ingest"):
        result = run_module(module, bad, timeout=60)
        out = result.stdout + result.stderr
        outputs.append(out)
        name = module.rsplit(".", 1)[1]
        assert result.returncode == 2, out[-2000:]
        assert out.count("\n") == 1 and "Traceback" not in out, out
        assert out.startswith(
            f"{name}: authentication failed at {sasl['KAFKA_BOOTSTRAP_SERVERS']} "
            "(check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD): "
        ), out
        assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in out
    bad_feed = Feed(Settings.from_env(bad), RingBuffer(1000))
    bad_feed.start()
    try:
        report = wait_for(
            "the feed to show the refused credentials",
            lambda: (h := bad_feed.health()).state == "down" and h.message.startswith("authentication failed") and h,
            30,
        )
        notice = health.banner(report, settings.stale_seconds, settings.bootstrap_servers)
        assert notice is not None and notice.kind == "error" and "KAFKA_SASL_PASSWORD" in notice.text
    finally:
        bad_feed.stop()

    logged = "\n".join([*outputs, caplog.text, *(r.getMessage() for r in caplog.records)])
    assert "authentication failed at" in caplog.text  # the feed logged the refusal...
    assert caplog.text.count("authentication failed at") == 1  # ...once, not at every reconnect
    assert password not in logged and wrong not in logged
