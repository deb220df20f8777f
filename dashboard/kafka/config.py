"""Check the librdkafka configuration at start: a bad `KAFKA_*` value is one readable line, not a dead thread.

librdkafka validates its configuration only when a client is created, so a
typo in a passthrough variable (KAFKA_SECURITY_PROTOCOL=SASL_PLAIN) would
otherwise surface as a KafkaException deep inside whichever thread made the
first client. `check_client_config` makes a producer and a consumer up front
and turns their refusal into a `SettingsError` naming the variable.
"""

from __future__ import annotations

import re
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from dashboard.core.settings import CREDENTIALS_HINT, Settings, SettingsError, is_secret
from dashboard.kafka.broker_state import AUTH_CODES

_PROPERTY = re.compile(r'property:? "([a-z0-9_.]+)"')
# librdkafka names some properties by their canonical alias in its messages.
_ALIASES = {"request.required.acks": "acks", "sasl.mechanism": "sasl.mechanisms"}


def _env_name(key: str) -> str:
    return "KAFKA_" + key.upper().replace(".", "_")


def _variable(text: str, settings: Settings) -> str | None:
    """Return the environment variable that librdkafka's complaint `text` is about, None if unknown.

    By the property it names (or the passthrough key it mentions), else by a
    non-secret passthrough value it quotes.
    """
    passed = dict(settings.kafka_extra)
    match = _PROPERTY.search(text)
    if match:
        prop = match.group(1)
        if prop == "bootstrap.servers":
            return "KAFKA_BOOTSTRAP_SERVERS"
        for key in (prop, _ALIASES.get(prop, "")):
            if key in passed:
                return _env_name(key)
        return _env_name(prop) if match.group(0).startswith("property:") else None
    for key in passed:
        if re.search(rf"(?<![a-z.]){re.escape(key)}(?![a-z.])", text):
            return _env_name(key)
    for key, value in passed.items():
        if len(value) >= 2 and not is_secret(key) and re.search(rf"\b{re.escape(value)}\b", text):
            return _env_name(key)
    return None


def client_config_error(settings: Settings) -> str | None:
    """Return one line saying why librdkafka refuses the configured settings, None when it accepts them.

    The line names the KAFKA_* variable when librdkafka names the property,
    and never holds the value of a secret setting.
    """
    for kind, make in (("producer", Producer), ("consumer", Consumer)):
        overrides = {"group_id": "darooghe-config-check"} if kind == "consumer" else {}
        try:
            client = make(settings.kafka_config(**overrides))
        except KafkaException as exc:
            text = exc.args[0].str()
            text = text.removeprefix(f"Failed to create {kind}: ")
            variable = _variable(text, settings)
            where = f"{variable}: " if variable else ""
            return settings.mask(f"{where}invalid Kafka client setting: {text}")
        if isinstance(client, Consumer):
            client.close()
    return None


def check_client_config(settings: Settings) -> None:
    """Raise SettingsError (one line, secrets masked) when librdkafka refuses the configured settings."""
    error = client_config_error(settings)
    if error is not None:
        raise SettingsError(error)


def check_credentials(settings: Settings, timeout: float = 5.0) -> None:
    """Raise SettingsError (one line) when the broker refuses our credentials; return when it answers or is down.

    A broker that cannot be reached is no settings error: the services
    retry on their own, so this gives up quietly after `timeout` seconds.
    """
    refused: list[str] = []

    def on_error(err: KafkaError) -> None:
        if err.code() in AUTH_CODES:
            refused.append(err.str())

    admin = AdminClient(settings.kafka_config(error_cb=on_error))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=0.5)
            return
        except KafkaException:
            admin.poll(0)  # serve error_cb
        if refused:
            raise SettingsError(
                settings.mask(
                    f"authentication failed at {settings.bootstrap_servers} ({CREDENTIALS_HINT}): {refused[0]}"
                )
            )


def preflight(settings: Settings) -> None:
    """What every CLI checks at start: librdkafka accepts the settings, the broker (if up) accepts the credentials."""
    check_client_config(settings)
    check_credentials(settings)
