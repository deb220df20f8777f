"""Replication settings on the real (single) broker: topics carry them; a cluster that cannot hold them is one line.

Every CLI (pulse, ingest) stops with one readable line and exit 2, no
traceback; the dashboard's feed shows it as a state (Health page, banner).
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from dashboard.core.settings import Settings
from dashboard.feed.transactions import Feed
from dashboard.kafka.admin import ensure_topics
from dashboard.store.buffer import RingBuffer
from dashboard.views import health
from tests.kafka.kafkatools import run_module

pytestmark = pytest.mark.kafka


def one_line_error(result_output: str) -> list[str]:
    lines = [line for line in result_output.splitlines() if line.strip() and not line.startswith("%")]
    assert "Traceback" not in result_output, result_output
    return [line for line in lines if " ERROR " in line or line.startswith(("ingest:", "pulse:"))]


@pytest.mark.parametrize(
    ("module", "args"), [("dashboard.ingest", ["--until-idle", "5"]), ("dashboard.pulse", ["--max-events", "5"])]
)
def test_cli_on_a_cluster_too_small_for_the_replication_factor(
    kafka_env: dict[str, str], module: str, args: list[str]
) -> None:
    env = dict(kafka_env, TOPIC_REPLICATION_FACTOR="3", HISTORY_EVENTS="10")
    result = run_module(module, env, *args, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = one_line_error(result.stdout + result.stderr)
    assert len(errors) == 1, errors
    assert errors[0].endswith(
        f"TOPIC_REPLICATION_FACTOR=3 cannot be met: 1 broker(s) up at {env['KAFKA_BOOTSTRAP_SERVERS']}"
    )


@pytest.mark.parametrize("module", ["dashboard.ingest", "dashboard.pulse", "dashboard.peek"])
def test_cli_with_a_bad_passthrough_setting_stops_at_start(kafka_env: dict[str, str], module: str) -> None:
    env = dict(kafka_env, KAFKA_SECURITY_PROTOCOL="SASL_PLAIN", KAFKA_SASL_PASSWORD="hunter2-secret")
    result = run_module(module, env, timeout=60)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out and "hunter2-secret" not in out
    name = module.rsplit(".", maxsplit=1)[-1]
    assert out.strip() == (
        f"{name}: KAFKA_SECURITY_PROTOCOL: invalid Kafka client setting: "
        'Invalid value "SASL_PLAIN" for configuration property "security.protocol"'
    )


def test_topics_we_create_carry_the_replication_settings(kafka_env: dict[str, str]) -> None:
    settings = Settings.from_env(dict(kafka_env, TOPIC_PARTITIONS="2"))
    topic = settings.transactions_topic
    assert ensure_topics(settings, [topic]) == [topic]
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    meta = admin.list_topics(topic, timeout=10).topics[topic]
    assert [len(p.replicas) for p in meta.partitions.values()] == [1, 1]
    resource = ConfigResource(ResourceType.TOPIC, topic)
    config = admin.describe_configs([resource])[resource].result(10)
    assert config["min.insync.replicas"].value == "1"
    assert config["retention.ms"].value == str(30 * 86_400_000)


def test_dashboard_feed_shows_a_cluster_too_small_for_the_replication_factor(kafka_env: dict[str, str]) -> None:
    settings = Settings.from_env(dict(kafka_env, TOPIC_REPLICATION_FACTOR="3"))
    feed = Feed(settings, RingBuffer(1000), probe_interval=0.5)
    feed.start()
    try:
        deadline = time.monotonic() + 30
        report = feed.health()
        while report.cluster_problem is None and time.monotonic() < deadline:
            time.sleep(0.2)
            report = feed.health()
        assert report.brokers == 1
        assert (
            report.cluster_problem
            == f"TOPIC_REPLICATION_FACTOR=3 cannot be met: 1 broker(s) up at {settings.bootstrap_servers}"
        )
        notice = health.banner(report, settings.stale_seconds, settings.bootstrap_servers)
        assert notice is not None and notice.kind == "warning" and "TOPIC_REPLICATION_FACTOR=3" in notice.text
    finally:
        feed.stop()
