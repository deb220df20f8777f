"""Shared entry-point plumbing: logging setup, settings errors as one line, signals."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable

from dashboard.core.settings import Settings, SettingsError


def setup_logging(level: int = logging.INFO) -> None:
    """Configure logging once for an entry point: time, level, module, message."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def load_settings(program: str, check: Callable[[Settings], None] | None = None) -> Settings:
    """Return settings from the environment, or exit 2 with one readable line.

    `check` (say, dashboard.kafka.config.check_client_config) may refuse the
    settings further by raising SettingsError.
    """
    try:
        settings = Settings.from_env()
        if check is not None:
            check(settings)
        return settings
    except SettingsError as exc:
        print(f"{program}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def stop_on_signals() -> threading.Event:
    """Return an event set by SIGINT or SIGTERM, so loops stop cleanly after a flush."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        logging.getLogger("dashboard").info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
