"""librdkafka's refusal of a KAFKA_* passthrough value becomes one line naming the variable, secrets masked.

Real librdkafka clients are created (no broker is needed to validate a configuration).
"""

from __future__ import annotations

import pytest

from dashboard.core.settings import Settings, SettingsError
from dashboard.kafka.config import check_client_config, client_config_error


@pytest.mark.parametrize(
    ("env", "starts"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAIN"},
            'KAFKA_SECURITY_PROTOCOL: invalid Kafka client setting: Invalid value "SASL_PLAIN"',
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISMS": "SCRAM-SHA-1024",
                "KAFKA_SASL_USERNAME": "u",
                "KAFKA_SASL_PASSWORD": "p",
            },
            "KAFKA_SASL_MECHANISMS: ",
        ),
        (
            {"KAFKA_SOCKET_TIMEOUT_MSX": "5"},
            "KAFKA_SOCKET_TIMEOUT_MSX: invalid Kafka client setting: No such configuration property",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISMS": "PLAIN"},
            "invalid Kafka client setting: sasl.username and sasl.password must be set",
        ),
        ({"KAFKA_ACKS": "lots"}, "KAFKA_ACKS: invalid Kafka client setting: "),
        ({"KAFKA_MESSAGE_TIMEOUT_MS": "soon"}, "KAFKA_MESSAGE_TIMEOUT_MS: "),
    ],
)
def test_bad_passthrough_value_is_one_line_naming_the_variable(env: dict[str, str], starts: str) -> None:
    with pytest.raises(SettingsError) as info:
        check_client_config(Settings.from_env(env))
    text = str(info.value)
    assert text.startswith(starts), text
    assert "\n" not in text


def test_a_secret_value_never_appears_in_the_error() -> None:
    pem = "-----BEGIN PRIVATE KEY-----notapem-----END PRIVATE KEY-----"
    settings = Settings.from_env(
        {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_PEM": pem, "KAFKA_SSL_KEY_PASSWORD": "pw-123456"}
    )
    error = client_config_error(settings)
    assert error is not None and error.startswith("KAFKA_SSL_KEY_PEM: invalid Kafka client setting"), error
    assert "notapem" not in error and "pw-123456" not in error


def test_good_settings_pass() -> None:
    env = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISMS": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "u",
        "KAFKA_SASL_PASSWORD": "p",
    }
    assert client_config_error(Settings.from_env(env)) is None
    check_client_config(Settings.from_env({}))
