"""The feed's status figures, with injected times: states, lag, counts, rates, staleness. No broker."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest
from confluent_kafka import KafkaError

from dashboard.core.schema import ERR_AMOUNT, ERR_DEVICE, ERR_SCHEMA, ERR_TIME
from dashboard.feed.status import FeedStatus, Pipeline, RateWindow
from dashboard.kafka.broker_state import BrokerState
from dashboard.store.decode import RawMessage, to_batch
from tests.feed_events import event

NOW_MS = int(time.time() * 1000)


def test_rate_window_edges() -> None:
    rate = RateWindow(10.0)
    rate.add(50, 100.0)
    rate.add(30, 105.0)
    assert rate.rate(105.0) == 8.0
    assert rate.rate(109.999) == 8.0
    assert rate.rate(110.0) == 3.0  # the event at 100.0 left the window (now - 10, now]
    assert rate.rate(115.0) == 0.0


def test_feed_status_states_and_messages() -> None:
    status = FeedStatus("kafka:9092", "tx", stale_seconds=10)
    h = status.health(100.0, broker_down=False)
    assert (h.state, h.message) == ("connecting", "connecting to kafka:9092")
    assert h.stale and h.last_message_age is None and h.total_lag is None and h.ingest_lag is None
    h = status.health(100.0, broker_down=True)
    assert (h.state, h.message) == ("down", "no broker at kafka:9092, retrying")
    status.answered()
    h = status.health(100.0, broker_down=False)
    assert (h.state, h.message) == ("connected", "connected to kafka:9092; waiting for topic tx")
    status.assigned({0: 5, 1: 0}, {0: 10})
    h = status.health(100.0, broker_down=False)
    assert h.message == "reading 2 partitions of tx at kafka:9092" and h.topic_found and h.partitions == 2
    assert status.health(100.0, broker_down=True).state == "down"
    status.crashed("ValueError: boom")
    h = status.health(100.0, broker_down=False)
    assert (h.state, h.message) == ("down", "feed stopped: ValueError: boom")


def test_feed_status_lag_counts_ages_and_staleness() -> None:
    status = FeedStatus("kafka:9092", "tx", stale_seconds=10)
    status.answered()  # connected: staleness is about lag, the loop and messages
    status.assigned({0: 5, 1: 0}, {0: 10})
    assert dict(status.health(0.0, False).lag) == {0: 5}  # partition 1: no watermark yet
    status.highs({1: 3, 7: 99})  # 7 is not assigned: ignored
    assert dict(status.health(0.0, False).lag) == {0: 5, 1: 3}
    kinds = ["valid", ERR_AMOUNT, ERR_DEVICE, "garbage"]
    raws = [RawMessage(event(NOW_MS + i, kinds[i]), NOW_MS + i, 0, 5 + i) for i in range(4)]
    status.appended(to_batch(raws), {0: 9, 7: 1}, now=100.0)
    status.appended(to_batch(raws[:2]), {1: 12}, now=105.0)  # past the high watermark: lag 0, not -9
    h = status.health(110.0, False)
    assert dict(h.lag) == {0: 1, 1: 0}
    assert h.messages_total == 6 and h.invalid_total == 4
    assert dict(h.invalid_counts) == {ERR_AMOUNT: 2, ERR_TIME: 0, ERR_DEVICE: 1, ERR_SCHEMA: 1}
    assert h.messages_per_second == 0.2  # the first batch (t=100) left the window (100, 110]
    assert h.newest_kafka_ts_ms == NOW_MS + 3
    assert h.newest_kafka_age == pytest.approx(110.0 - (NOW_MS + 3) / 1000)
    assert h.last_message_age == 5.0 and not h.stale
    assert status.health(115.001, False).freshness == "quiet"  # caught up: an old message is not stale
    assert not status.health(115.001, False).stale
    status.polled(110.0)
    assert status.health(120.0, False).freshness == "quiet"  # exactly stale_seconds since the poll: not yet
    assert status.health(120.001, False).stale and status.health(120.001, False).freshness == "stalled"
    status.polled(121.0)
    status.highs({1: 1012})  # partition 1 at 12: 1,000 behind (plus 1 on partition 0)
    assert status.health(121.0, False).freshness == "behind" and status.health(121.0, False).stale
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.state = "down"  # type: ignore[misc]
    status.assigned({}, {})  # the topic disappeared
    h = status.health(120.0, False)
    assert not h.topic_found and h.partitions == 0 and h.total_lag is None


def test_feed_status_reports_a_repeated_error_once_until_data_flows() -> None:
    status = FeedStatus("kafka:9092", "tx", stale_seconds=10)
    assert status.error("Broker: Unknown topic", 1.0)
    assert not status.error("Broker: Unknown topic", 2.0)
    h = status.health(3.0, False)
    assert (h.last_error, h.last_error_at) == ("Broker: Unknown topic", 2.0)
    status.appended(to_batch([RawMessage(event(NOW_MS), NOW_MS)]), {}, now=4.0)
    assert status.error("Broker: Unknown topic", 5.0)


def test_refused_kafka_settings_are_a_down_state_with_the_reason() -> None:
    status = FeedStatus("kafka:9092", "tx", stale_seconds=10)
    status.misconfigured("KAFKA_ACKS: invalid Kafka client setting: x", 100.0)
    h = status.health(101.0, broker_down=False)
    assert h.state == "down" and h.config_error == "KAFKA_ACKS: invalid Kafka client setting: x"
    assert h.message == "cannot connect: KAFKA_ACKS: invalid Kafka client setting: x"
    assert h.last_error == h.config_error and h.last_error_at == 100.0


def test_pipeline_figures_from_the_probe() -> None:
    status = FeedStatus("kafka:9092", "tx", stale_seconds=10)
    h = status.health(1.0, False)
    assert (h.ingest_lag, h.error_records, h.brokers, h.cluster_problem) == (None, None, None, None)
    status.pipeline(Pipeline(40, 6, 2, "TOPIC_REPLICATION_FACTOR=3 cannot be met"))
    h = status.health(1.0, False)
    assert (h.ingest_lag, h.error_records) == (40, 6)
    assert (h.brokers, h.cluster_problem) == (2, "TOPIC_REPLICATION_FACTOR=3 cannot be met")


def test_refused_credentials_are_down_with_the_reason_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    state = BrokerState("k:9092", logging.getLogger("test.broker"))
    err = KafkaError(KafkaError._AUTHENTICATION, "SASL authentication error: Authentication failed")
    with caplog.at_level(logging.INFO, "test.broker"):
        state.on_error(err)
        state.on_error(err)
    assert state.down and state.auth_error == "SASL authentication error: Authentication failed"
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD" in caplog.text
    status = FeedStatus("k:9092", "tx", stale_seconds=10)
    h = status.health(1.0, state.down, state.auth_error)
    assert h.state == "down" and h.message.startswith("authentication failed at k:9092, retrying (check KAFKA_SASL")
    state.mark_up()
    assert not state.down and state.auth_error is None
