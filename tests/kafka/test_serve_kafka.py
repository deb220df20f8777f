"""The dashboard server's warm-up against the real broker: the first page run finds the feed started and filled."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.core.settings import Settings
from dashboard.ui import serve
from dashboard.ui import source as live
from tests.conftest import ROOT
from tests.feed_events import event
from tests.kafka.test_feed_kafka import create_topic, produce

pytestmark = pytest.mark.kafka

EVENTS = 30


def test_warm_starts_the_feed_that_the_first_page_run_shows(
    kafka_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in kafka_env.items():
        monkeypatch.setenv(key, value)
    topic = kafka_env["TRANSACTIONS_TOPIC"]
    create_topic(kafka_env["KAFKA_BOOTSTRAP_SERVERS"], topic)
    now = int(time.time() * 1000)
    produce(kafka_env["KAFKA_BOOTSTRAP_SERVERS"], topic, [(i % 3, event(now - i), now - i) for i in range(EVENTS)])
    live.install(None)
    try:
        warmed = serve.warm()
        assert warmed is not None
        assert live.source(Settings.from_env()) is warmed  # the one st.cache_resource value the pages get
        deadline = time.monotonic() + 30
        while len(warmed.buffer) < EVENTS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(warmed.buffer) == EVENTS
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()
        assert not at.exception
        captions = [c.value for c in at.caption if "buffered transactions" in c.value]
        assert captions and captions[0].startswith(f"{EVENTS} of {EVENTS} buffered transactions"), captions
    finally:
        live._feed.clear()  # on_release stops the feeds
