"""Kafka wiring of the generator: one idempotent producer, delivery accounting, broker state.

Follows confluent-kafka's examples: `poll(0)` after every produce, `BufferError`
answered by `poll(0.1)` and a retry, every delivery report counted (failures
logged, never ignored), `flush()` on exit. Broker outages arrive through
`error_cb` as a state ("no broker at ..., retrying"); librdkafka reconnects by
itself, so nothing here raises on a dead broker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient

from dashboard.core.settings import Settings
from dashboard.kafka.broker_state import BrokerState
from dashboard.pulse.batch import Message as PulseMessage

logger = logging.getLogger(__name__)
#: librdkafka's own log lines go here; __main__ shows them only with --verbose (error_cb covers outages).
LIBRDKAFKA_LOGGER = logging.getLogger("dashboard.pulse.librdkafka")

#: Our defaults; KAFKA_* passthrough settings from the environment override them.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger.ms": 25,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
}
#: Durability that no passthrough setting may weaken: every replica in sync acknowledges, no duplicates on retry.
PRODUCER_DURABILITY: dict[str, Any] = {"enable.idempotence": True, "acks": "all"}


def producer_config(settings: Settings) -> dict[str, Any]:
    """Return the producer's librdkafka config: our defaults, the passthrough settings, then acks=all + idempotence."""
    return {**PRODUCER_DEFAULTS, **settings.kafka_config(), **PRODUCER_DURABILITY}


LOGGED_FAILURES = 10
FAILURE_LOG_EVERY = 1000
IDLE_SLICE_S = 0.2


@dataclass
class Counts:
    """What one run handed to Kafka and what Kafka confirmed."""

    history: int = 0
    live: int = 0
    delivered: int = 0
    failed: int = 0
    undelivered: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    fraud: Counter[str] = field(default_factory=Counter)

    @property
    def produced(self) -> int:
        """Messages accepted into the producer's queue."""
        return self.history + self.live

    def summary(self) -> str:
        """One line: produced, delivered, failed, injected by code, and fraud events by rule if any."""
        codes = ", ".join(f"{code} {n}" for code, n in sorted(self.injected.items())) or "none"
        line = (
            f"produced {self.produced} (history {self.history}, live {self.live}), delivered {self.delivered}, "
            f"failed {self.failed}, undelivered {self.undelivered}, injected {sum(self.injected.values())} ({codes})"
        )
        if self.fraud:
            rules = ", ".join(f"{rule} {n}" for rule, n in sorted(self.fraud.items()))
            line += f", fraud events {sum(self.fraud.values())} ({rules})"
        return line


class PulseProducer:
    """Produce Pulse messages to one topic and keep `counts` up to date."""

    def __init__(self, settings: Settings, stop: threading.Event, clock: Callable[[], float] = time.time) -> None:
        self.topic = settings.transactions_topic
        self.stop = stop
        self.clock = clock
        self.counts = Counts()
        self.state = BrokerState(settings.bootstrap_servers, logger)
        config = producer_config(settings)
        config.update(error_cb=self.state.on_error, on_delivery=self._on_delivery, logger=LIBRDKAFKA_LOGGER)
        self._producer = Producer(config)

    def send(self, message: PulseMessage, live: bool = False) -> bool:
        """Queue one message with its own Kafka timestamp; False if stopped while the queue was full."""
        produce = self._producer.produce
        while True:
            try:
                produce(
                    self.topic,
                    message.value,
                    message.key,
                    timestamp=message.timestamp_ms,
                    headers=message.headers(),
                )
                break
            except BufferError:
                if self.stop.is_set():
                    return False
                self._producer.poll(0.1)
        self._producer.poll(0)
        if live:
            self.counts.live += 1
        else:
            self.counts.history += 1
        if message.injected:
            self.counts.injected.update(message.injected)
        if message.fraud is not None:
            self.counts.fraud[message.fraud.rule] += 1
        return True

    def idle_until(self, when: float) -> bool:
        """Serve delivery reports until clock() reaches `when`; False as soon as stop is set."""
        while not self.stop.is_set():
            delay = when - self.clock()
            if delay <= 0:
                return True
            self._producer.poll(min(delay, IDLE_SLICE_S))
        return False

    def close(self, timeout: float = 30.0) -> Counts:
        """Flush for up to `timeout` seconds; messages still queued then count as undelivered."""
        deadline = time.monotonic() + timeout
        while len(self._producer) and time.monotonic() < deadline:
            self._producer.flush(min(1.0, max(deadline - time.monotonic(), 0.0)))
        self.counts.undelivered = len(self._producer)
        if self.counts.undelivered:
            logger.error("%d messages still undelivered after %.0f s", self.counts.undelivered, timeout)
        return self.counts

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.counts.delivered += 1
            if self.state.down:
                self.state.mark_up()
            return
        self.counts.failed += 1
        failed = self.counts.failed
        if failed <= LOGGED_FAILURES or failed % FAILURE_LOG_EVERY == 0:
            logger.error("delivery to %s failed (%d so far): %s", msg.topic(), failed, err.str())


def wait_for_broker(settings: Settings, state: BrokerState, stop: threading.Event, timeout: float = 3.0) -> bool:
    """Block until the cluster answers a metadata request; False if `stop` is set first.

    Logs one "no broker at ..., retrying" line per outage (through `state`).
    """
    config: dict[str, Any] = {**settings.kafka_config(), "logger": LIBRDKAFKA_LOGGER}
    admin = AdminClient(config)
    while not stop.is_set():
        try:
            admin.list_topics(timeout=timeout)
        except KafkaException as exc:
            state.on_error(exc.args[0])
            stop.wait(1.0)
            continue
        state.mark_up()
        return True
    return False
