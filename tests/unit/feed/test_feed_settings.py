"""A feed whose KAFKA_* settings librdkafka refuses starts no thread and says why in its health. No broker."""

from __future__ import annotations

import threading

from dashboard.core.settings import Settings
from dashboard.feed.transactions import Feed
from dashboard.store.buffer import RingBuffer
from dashboard.views import health


def test_bad_setting_shows_in_health_and_banner_instead_of_connecting_forever() -> None:
    settings = Settings.from_env(
        {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXTT", "KAFKA_SASL_PASSWORD": "hunter2-secret"}
    )
    before = threading.active_count()
    feed = Feed(settings, RingBuffer(1000))
    feed.start()
    try:
        report = feed.health()
        assert threading.active_count() == before  # no thread left to die
        assert report.state == "down"
        assert report.config_error is not None
        assert report.config_error.startswith("KAFKA_SECURITY_PROTOCOL: invalid Kafka client setting")
        notice = health.banner(report, settings.stale_seconds, settings.bootstrap_servers)
        assert notice is not None and notice.kind == "error"
        assert notice.text.startswith("The live feed cannot start: KAFKA_SECURITY_PROTOCOL")
        assert "hunter2-secret" not in notice.text and "hunter2-secret" not in str(report.last_error)
        figures = {f.label: f for f in health.assess(report, settings.stale_seconds, 0, 1000)}
        assert figures["Broker"].level == "red"
    finally:
        feed.stop()
