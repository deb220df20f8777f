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
