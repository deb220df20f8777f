"""Broker errors as states: 'connected' or 'broker down, retrying', never a crash."""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import KafkaError

from dashboard.core.settings import CREDENTIALS_HINT

DOWN_CODES = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE})
#: The broker refused our credentials: down too, with the reason (librdkafka's text never holds the password).
AUTH_CODES = frozenset({KafkaError._AUTHENTICATION})


class BrokerState:
    """Tracks the cluster's reachability from librdkafka's error callback.

    `on_error` is given to clients as `error_cb`. A transport failure marks the
    broker down and logs one warning; the state returns to up when `mark_up`
    is called (by anyone who just received data or metadata). Thread-safe.
    """

    def __init__(self, bootstrap: str, logger: logging.Logger) -> None:
        self.bootstrap = bootstrap
        self._logger = logger
        self._lock = threading.Lock()
        self.down = False
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.auth_error: str | None = None  # set while the broker refuses our credentials

    def on_error(self, err: KafkaError) -> None:
        """Record a client error; log a broker outage once per outage, other errors each time."""
        with self._lock:
            self.last_error = err.str()
            self.last_error_at = time.time()
            if err.code() in AUTH_CODES:
                if self.auth_error is None:  # once per outage: librdkafka reports every reconnect
                    self._logger.error(
                        "authentication failed at %s (%s): %s", self.bootstrap, CREDENTIALS_HINT, err.str()
                    )
                self.auth_error, self.down = err.str(), True
                return
            if err.code() in DOWN_CODES:
                if not self.down:
                    self._logger.warning("no broker at %s, retrying (%s)", self.bootstrap, err.str())
                self.down = True
                return
        if err.fatal():
            self._logger.error("fatal Kafka error: %s", err.str())
        else:
            self._logger.warning("Kafka error: %s", err.str())

    def mark_up(self) -> None:
        """Record that the broker answered; logs the recovery after an outage."""
        with self._lock:
            if self.down:
                self._logger.info("broker at %s is reachable again", self.bootstrap)
            self.down, self.auth_error = False, None
