"""KAFKA_SASL=1 scripts/local-kafka start: a broker that only talks SASL/SCRAM-SHA-512.

Runs its own broker on free ports in a tmp LOCAL_KAFKA_DIR. The credentials are
taken from the client settings `start` prints; with them a producer and a
consumer work, with a wrong password the client gets an authentication error.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from tests.kafka.localkafka import LocalKafka, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def sasl_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    kafka = LocalKafka(tmp_path / "kafka", nodes=1, KAFKA_SASL="1")
    kafka.env.pop("KAFKA_SASL_USERNAME", None)
    kafka.env.pop("KAFKA_SASL_PASSWORD", None)
    try:
        yield kafka
    finally:
        kafka.run("stop", check=False, timeout=120)


def client_settings(stdout: str) -> dict[str, str]:
    line = next(line for line in stdout.splitlines() if "client settings:" in line)
    return dict(kv.split("=", 1) for kv in line.split("client settings:", 1)[1].split())


def librdkafka(settings: dict[str, str], **overrides: object) -> dict[str, object]:
    conf: dict[str, object] = {
        "bootstrap.servers": settings["KAFKA_BOOTSTRAP_SERVERS"],
        "security.protocol": settings["KAFKA_SECURITY_PROTOCOL"],
        "sasl.mechanisms": settings["KAFKA_SASL_MECHANISMS"],
        "sasl.username": settings["KAFKA_SASL_USERNAME"],
        "sasl.password": settings["KAFKA_SASL_PASSWORD"],
    }
    conf.update(overrides)
    return conf


def test_sasl_broker_accepts_its_user_and_rejects_a_wrong_password(sasl_broker: LocalKafka, tmp_path: Path) -> None:
    started = sasl_broker.run("start")
    settings = client_settings(started.stdout)
    assert settings["KAFKA_BOOTSTRAP_SERVERS"] == f"localhost:{sasl_broker.port}"
    assert settings["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert settings["KAFKA_SASL_MECHANISMS"] == "SCRAM-SHA-512"
    assert settings["KAFKA_SASL_USERNAME"] == "darooghe"
    password = settings["KAFKA_SASL_PASSWORD"]
    assert len(password) >= 16
    credentials = tmp_path / "kafka" / "sasl-credentials"
    assert credentials.stat().st_mode & 0o777 == 0o600
    rc, lines = sasl_broker.status()
    assert rc == 0 and re.match(rf"node 1 localhost:{sasl_broker.port} running .*SASL_PLAINTEXT", lines[0]), lines

    topic = f"sasl.test.{uuid.uuid4().hex[:8]}"
    failures: list[KafkaError] = []
    producer = Producer(librdkafka(settings, acks="all", **{"message.timeout.ms": "30000"}))
    for i in range(10):
        producer.produce(topic, value=str(i).encode(), on_delivery=lambda e, m: e and failures.append(e))
    assert producer.flush(40) == 0 and not failures, failures

    consumer = Consumer(librdkafka(settings, **{"group.id": "sasl-test", "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < 10 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append(msg.value())
    finally:
        consumer.close()
    assert sorted(got) == sorted(str(i).encode() for i in range(10))

    errors: list[KafkaError] = []
    wrong = Producer(
        librdkafka(
            settings,
            **{"sasl.password": password + "x", "message.timeout.ms": "5000", "log_level": "0"},
            error_cb=errors.append,
        )
    )
    wrong.produce(topic, value=b"never")

    def auth_error() -> KafkaError | None:
        wrong.poll(0.2)
        return next((e for e in errors if e.code() == KafkaError._AUTHENTICATION), None)

    auth = wait_for("an authentication error for the wrong password", auth_error, timeout=20)
    assert "Authentication failed" in auth.str() and "invalid credentials" in auth.str(), auth.str()
    wrong.purge()
    wrong.flush(0)

    # The broker logged the failure, and never the password.
    log = (tmp_path / "kafka" / "node-1" / "broker.log").read_text()
    assert "Failed authentication" in log
    assert password not in log
