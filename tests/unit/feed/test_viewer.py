"""feed/viewer: the read-only consumer config every dashboard thread uses, and the daemon loop's start/stop."""

from __future__ import annotations

import threading

from dashboard.core.settings import Settings
from dashboard.feed.viewer import DaemonLoop, viewer_config


def test_a_viewer_joins_nothing_commits_nothing_and_creates_no_topic() -> None:
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "k:9092"})
    first = viewer_config(settings, "alerts", print, queued_max_messages_kbytes=4096)
    second = viewer_config(settings, "alerts", print)
    assert first["group.id"].startswith("darooghe-dashboard-alerts-") and first["group.id"] != second["group.id"]
    assert first["client.id"] == "darooghe-dashboard-alerts"
    assert first["enable.auto.commit"] is False and first["allow.auto.create.topics"] is False
    assert (first["isolation.level"], first["auto.offset.reset"]) == ("read_committed", "earliest")
    assert first["queued.max.messages.kbytes"] == 4096 and first["error_cb"] is print
    assert viewer_config(settings, "transactions", print, "given")["group.id"] == "given"


class Ticker(DaemonLoop):
    thread_name = "test-ticker"

    def __init__(self) -> None:
        super().__init__()
        self.starts = 0
        self.running = threading.Event()

    def _run(self) -> None:
        self.starts += 1
        self.running.set()
        self._stop.wait(30)


def test_the_loop_starts_once_and_stops_when_asked() -> None:
    loop = Ticker()
    loop.start()
    loop.start()
    assert loop.running.wait(10)
    thread = loop._thread
    assert thread is not None and thread.name == "test-ticker" and thread.daemon
    loop.stop(timeout=10)
    assert not thread.is_alive() and loop.starts == 1
