"""The compose stack agrees with the code: ports, topics, environment names, image."""

from __future__ import annotations

import re
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
    assert [(h, c) for _, h, c in published(kafka)] == [(host_port, host_port)]
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
    assert compose["services"]["dashboard"]["command"][:3] == ["python", "-m", "dashboard.ui"]
    assert (ROOT / "Dockerfile").exists()


def test_environment_names_and_topics_are_the_codes(compose: dict[str, Any]) -> None:
    known = {row[0] for row in settings_table()}
    for name in ("pulse", "ingest", "dashboard"):
        env = compose["services"][name]["environment"]
        unknown = {k for k in set(env) - known if k != "STREAMLIT_SECRETS_FILES"}  # Streamlit's own option
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


def published(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return (host address with its default, host port, container port) of every published port."""
    out = []
    for mapping in service.get("ports", []):
        assert isinstance(mapping, str), f"long-syntax port mapping {mapping!r}: give its host_ip"
        address, host, container = re.fullmatch(r"(\$\{[A-Z_]+:-[0-9.]+\}|[0-9.]+):(\d+):(\d+)", mapping).groups()  # type: ignore[union-attr]
        out.append((address, host, container))
    return out


def test_dashboard_port_matches_streamlit_config(compose: dict[str, Any]) -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    port = str(config.get("server", {}).get("port", 8501))
    assert [(h, c) for _, h, c in published(compose["services"]["dashboard"])] == [(port, port)]
    assert f"--server.port={port}" in compose["services"]["dashboard"]["command"]
    assert [(h, c) for _, h, c in published(compose["services"]["kafdrop"])] == [("9000", "9000")]


def test_every_published_port_binds_to_localhost_by_default(compose: dict[str, Any]) -> None:
    seen = 0
    for name, service in compose["services"].items():
        for address, _, _ in published(service):
            default = address.removesuffix("}").split(":-")[-1]
            assert default == "127.0.0.1", f"{name} publishes on {address}"
            seen += 1
    assert seen == 4  # kafka, kafdrop, ingest metrics, dashboard
    assert published(compose["services"]["dashboard"])[0][0] == "${DASHBOARD_ADDRESS:-127.0.0.1}"


def test_images_are_pinned_to_versions(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith((":latest", ":")), f"{name} image {image} is not pinned"
    assert compose["services"]["kafdrop"]["image"] == "obsidiandynamics/kafdrop:4.1.0"


def test_ingest_serves_metrics_and_its_healthcheck_uses_healthz(compose: dict[str, Any]) -> None:
    ingest = compose["services"]["ingest"]
    env = ingest["environment"]
    port = env["METRICS_PORT"]
    settings = Settings.from_env({"METRICS_PORT": port, "METRICS_ADDRESS": env["METRICS_ADDRESS"]})
    assert settings.metrics_port == int(port) and Settings().metrics_port is None  # off by default, on here
    assert [(h, c) for _, h, c in published(ingest)] == [(port, port)]
    check = " ".join(ingest["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/healthz" in check
    assert "/_stcore/health" in " ".join(compose["services"]["dashboard"]["healthcheck"]["test"])


def test_stack_and_plain_streamlit_bind_to_localhost_by_default() -> None:
    stack = (ROOT / "scripts" / "stack").read_text()
    assert "ADDRESS=${DASHBOARD_ADDRESS:-127.0.0.1}" in stack
    assert '-m dashboard.ui --server.address "$ADDRESS"' in stack  # streamlit run app.py, warmed
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert Settings().metrics_address == "127.0.0.1"


SECRETS_DIR = "/run/secrets/darooghe"


def test_dashboard_reads_sign_in_secrets_from_a_read_only_mount(compose: dict[str, Any]) -> None:
    dashboard = compose["services"]["dashboard"]
    env = dashboard["environment"]
    assert env["STREAMLIT_SECRETS_FILES"] == f"{SECRETS_DIR}/secrets.toml"
    assert dashboard["volumes"] == [f"${{DASHBOARD_SECRETS_DIR:-./secrets}}:{SECRETS_DIR}:ro"]
    assert (
        env["DASHBOARD_ALLOWED"] == "${DASHBOARD_ALLOWED:-}" and env["DASHBOARD_ANALYSTS"] == "${DASHBOARD_ANALYSTS:-}"
    )
    for name, service in compose["services"].items():  # no secret is passed in the environment
        for key in service.get("environment", {}):
            assert (
                not any(w in key.lower() for w in ("secret", "password", "token")) or key == "STREAMLIT_SECRETS_FILES"
            )
        if name != "dashboard":
            assert not any(SECRETS_DIR in str(v) for v in service.get("volumes", []))


def test_the_image_holds_no_secrets() -> None:
    copies = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY")]
    assert ".streamlit/config.toml" in copies and ".streamlit/" not in copies and "." not in copies
    assert not any("secret" in c for c in copies)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"secrets", "**/secrets.toml"} <= set(ignored)
    git_ignored = (ROOT / ".gitignore").read_text().split()
    assert {"/secrets/*", ".streamlit/secrets.toml"} <= set(git_ignored)


def test_stack_passes_the_same_secrets_file() -> None:
    stack = (ROOT / "scripts" / "stack").read_text()
    assert 'SECRETS="${DASHBOARD_SECRETS_DIR:-$ROOT/secrets}/secrets.toml"' in stack
    assert '--secrets.files "$SECRETS"' in stack
    assert (ROOT / "secrets" / "README.md").exists()
