"""Settings from the environment: defaults, ranges, passthrough, secrets."""

from __future__ import annotations

import pytest

from dashboard.core.settings import Settings, SettingsError, settings_table


def test_defaults_match_the_original_generator() -> None:
    s = Settings.from_env({})
    assert (s.event_rate, s.peak_factor, s.fraud_rate, s.declined_rate) == (100, 2.5, 0.02, 0.05)
    assert (s.merchant_count, s.customer_count, s.event_init_mode) == (50, 1000, "flush")
    assert s.bootstrap_servers == "localhost:9092" and s.history_events == 20_000


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EVENT_RATE": "5000"}, "EVENT_RATE='5000' is out of range 10-1000"),
        ({"EVENT_RATE": "fast"}, "EVENT_RATE='fast' is not a number"),
        ({"PEAK_FACTOR": "nan"}, "PEAK_FACTOR='nan' is out of range 1-5"),
        ({"MERCHANT_COUNT": "9"}, "MERCHANT_COUNT='9' is out of range 10-500"),
        ({"CUSTOMER_COUNT": "12.5"}, "CUSTOMER_COUNT='12.5' is not an integer"),
        ({"EVENT_INIT_MODE": "wipe"}, "EVENT_INIT_MODE='wipe' must be one of flush, append, skip"),
    ],
)
def test_bad_values_are_one_readable_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_kafka_prefixed_settings_pass_through_and_secrets_are_masked() -> None:
    s = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "b:9093",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_PASSWORD": "hunter2",
            "KAFKA_PORT": "9092",
            "KAFKA_HOME": "/opt/kafka",
        }
    )
    config = s.kafka_config(group_id="g", error_cb=print)
    assert config == {
        "bootstrap.servers": "b:9093",
        "log_level": 2,
        "error_cb": print,
        "security.protocol": "SASL_SSL",
        "sasl.password": "hunter2",
        "group.id": "g",
    }
    assert "hunter2" not in s.describe() and "hunter2" not in repr(s)


def test_settings_table_lists_every_variable() -> None:
    names = [row[0] for row in settings_table()]
    assert "EVENT_RATE" in names and "KAFKA_BOOTSTRAP_SERVERS" in names and len(names) == len(set(names))


def test_replication_defaults_and_min_insync_follows_replication() -> None:
    s = Settings.from_env({})
    assert (s.topic_replication, s.min_insync) == (1, 1)
    assert Settings.from_env({"TOPIC_REPLICATION_FACTOR": "3"}).min_insync == 2
    assert Settings.from_env({"TOPIC_REPLICATION_FACTOR": "2"}).min_insync == 2
    assert Settings.from_env({"TOPIC_REPLICATION_FACTOR": "3", "TOPIC_MIN_INSYNC_REPLICAS": "3"}).min_insync == 3
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"TOPIC_REPLICATION_FACTOR": "2", "TOPIC_MIN_INSYNC_REPLICAS": "3"})
    assert str(info.value).startswith("TOPIC_MIN_INSYNC_REPLICAS=3 exceeds TOPIC_REPLICATION_FACTOR=2")
    with pytest.raises(SettingsError, match="TOPIC_REPLICATION_FACTOR='0' is out of range 1-16"):
        Settings.from_env({"TOPIC_REPLICATION_FACTOR": "0"})


def test_local_broker_script_variables_never_reach_librdkafka() -> None:
    script_only = [
        "KAFKA_NODES",
        "KAFKA_SASL",
        "KAFKA_PORT",
        "KAFKA_CONTROLLER_PORT",
        "KAFKA_HOME",
        "KAFKA_VERSION",
        "KAFKA_HEAP_OPTS",
        "KAFKA_START_TIMEOUT",
        "KAFKA_STOP_TIMEOUT",
        "KAFKA_EXTRA_CONFIG",
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_OPTS",
        "KAFKA_LOG4J_OPTS",
    ]
    s = Settings.from_env(dict.fromkeys(script_only, "1") | {"KAFKA_SASL_USERNAME": "u"})
    assert s.kafka_extra == (("sasl.username", "u"),)


@pytest.mark.parametrize(
    "name",
    [
        "KAFKA_SASL_OAUTHBEARER_CONFIG",
        "KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET",
        "KAFKA_SASL_OAUTHBEARER_EXTENSIONS",
        "KAFKA_SASL_JAAS_CONFIG",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_KEY_PASSWORD",
        "KAFKA_SSL_KEY_PEM",
        "KAFKA_SSL_KEYSTORE_PASSWORD",
        "KAFKA_SSL_CERTIFICATE_PEM",
        "KAFKA_SSL_CA_PEM",
        "KAFKA_SSL_ENGINE_CALLBACK_DATA",
    ],
)
def test_every_sasl_and_ssl_secret_is_masked(name: str) -> None:
    s = Settings.from_env({name: "s3cr3t-value", "KAFKA_SASL_USERNAME": "alice"})
    assert "s3cr3t-value" not in s.describe() and "s3cr3t-value" not in repr(s)
    assert "alice" in s.describe()  # a user name is no secret
    assert s.mask("librdkafka said: s3cr3t-value is wrong") == "librdkafka said: *** is wrong"
