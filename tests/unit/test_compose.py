"""The compose stack agrees with the code: ports, topics, environment names, image."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboard.core.schema import ERROR_TOPIC, FRAUD_TOPIC, TRANSACTIONS_TOPIC
from dashboard.core.settings import Settings, settings_table

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_present(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"kafka", "kafdrop", "pulse", "ingest", "dashboard"}
    assert compose["services"]["kafka"]["image"] == "apache/kafka:4.0.0"
    assert "kafka_data" in compose["volumes"]
    assert "kafka_data:/var/lib/kafka/data" in compose["services"]["kafka"]["volumes"]


def test_kafka_is_kraft_with_host_and_container_listeners(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    host_port = Settings().bootstrap_servers.split(":")[1]
    assert advertised["HOST"] == Settings().bootstrap_servers  # host clients use our default
    assert f"{host_port}:{host_port}" in kafka["ports"]
    internal = advertised["INTERNAL"]
    for name in ("pulse", "ingest", "dashboard"):
        assert compose["services"][name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == internal
    assert compose["services"]["kafdrop"]["environment"]["KAFKA_BROKERCONNECT"] == internal
    assert "healthcheck" in kafka


def test_python_services_wait_for_healthy_broker_and_share_one_image(compose: dict[str, Any]) -> None:
    images = set()
    for name in ("pulse", "ingest", "dashboard"):
        service = compose["services"][name]
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert service["build"] == "."
        images.add(service["image"])
    assert len(images) == 1
    assert compose["services"]["pulse"]["command"][-1] == "dashboard.pulse"
    assert compose["services"]["ingest"]["command"][-1] == "dashboard.ingest"
    assert (ROOT / "Dockerfile").exists()


def test_environment_names_and_topics_are_the_codes(compose: dict[str, Any]) -> None:
    known = {row[0] for row in settings_table()}
    for name in ("pulse", "ingest", "dashboard"):
        env = compose["services"][name]["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name} sets variables the code does not read: {unknown}"
        assert env["TRANSACTIONS_TOPIC"] == TRANSACTIONS_TOPIC
        assert env["ERROR_TOPIC"] == ERROR_TOPIC
        assert env["FRAUD_TOPIC"] == FRAUD_TOPIC
    defaults = {row[0]: row[1] for row in settings_table()}
    for key, value in compose["services"]["pulse"]["environment"].items():
        if isinstance(value, str) and value.startswith("${"):
            default = value.split(":-")[1].rstrip("}")
            assert float(default) == float(defaults[key]) if key != "EVENT_INIT_MODE" else default == defaults[key]
    assert compose["services"]["ingest"]["environment"]["INGEST_GROUP"] == Settings().ingest_group


def test_dashboard_port_matches_streamlit_config(compose: dict[str, Any]) -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    port = config.get("server", {}).get("port", 8501)
    assert f"{port}:{port}" in compose["services"]["dashboard"]["ports"]
    assert f"--server.port={port}" in compose["services"]["dashboard"]["command"]
    assert "9000:9000" in compose["services"]["kafdrop"]["ports"]
