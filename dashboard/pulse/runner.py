"""The generator's run: prepare the topic, backfill history, then stream live until stopped.

EVENT_INIT_MODE decides the history: `flush` deletes and recreates the topic
and every topic derived from it (error logs, fraud alerts, rollups: a fresh
start of the whole pipeline, `dashboard.kafka.admin.flush_pipeline`) and
writes it, `append` writes it after whatever is there, `skip` writes it
only when the topic is empty. `--no-history` leaves the topic untouched (no
delete even in flush mode) and streams live only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dashboard.core.settings import Settings
from dashboard.kafka.admin import ensure_topics, flush_pipeline, message_count
from dashboard.pulse.events import EventFactory, Streams, history, make_factory
from dashboard.pulse.inject_fraud import FraudInjector
from dashboard.pulse.model import Population
from dashboard.pulse.producer import Counts, PulseProducer, wait_for_broker
from dashboard.pulse.profile import Profile

logger = logging.getLogger(__name__)

DAY_S = 86_400.0
LIVE_CHUNK = 256
MAX_LAG_S = 5.0
PROGRESS_EVERY_S = 5.0
LIVE_REPORT_EVERY_S = 60.0


@dataclass(frozen=True)
class Options:
    """Command-line choices: history and live phases, live event limit, live rate multiplier."""

    history: bool = True
    live: bool = True
    max_events: int | None = None
    rate_multiplier: float = 1.0


def run(settings: Settings, options: Options, stop: threading.Event, clock: Callable[[], float] = time.time) -> Counts:
    """Run the generator until done or `stop` is set; flush and return the counts.

    Raises KafkaException or TimeoutError only when topic administration fails
    on a reachable broker.
    """
    streams = Streams.from_seed(settings.seed)
    population = Population.build(settings.merchant_count, settings.customer_count, streams.population)
    profile = Profile(settings.event_rate, settings.peak_factor)
    producer = PulseProducer(settings, stop, clock)
    fraud = FraudInjector(population, settings.fraud_rate)  # one ground truth across history and live
    logger.info(
        "pulse to %s at %s: %g events/min on average, peak x%g, seed %s, merchants per category %s",
        settings.transactions_topic,
        settings.describe(),
        settings.event_rate,
        settings.peak_factor,
        settings.seed,
        population.describe(),
    )
    try:
        if not wait_for_broker(settings, producer.state, stop):
            return producer.counts
        if options.history and prepare_topic(settings):
            write_history(
                producer, make_factory(settings, population, streams.history, fraud), profile, settings, clock
            )
        elif not options.history:
            ensure_topics(settings, [settings.transactions_topic])
        if options.live and not stop.is_set():
            live_factory = make_factory(settings, population, streams.live, fraud)
            stream_live(producer, live_factory, profile, options, clock)
    finally:
        counts = producer.close()
        logger.info("pulse: %s", counts.summary())
    return counts


def prepare_topic(settings: Settings) -> bool:
    """Apply EVENT_INIT_MODE to the topic; return True when history should be written."""
    topic = settings.transactions_topic
    if settings.event_init_mode == "flush":
        logger.info("%s", flush_pipeline(settings))
    ensure_topics(settings, [topic])
    if settings.event_init_mode == "skip":
        present = message_count(settings, topic)
        if present:
            logger.info("skip mode: %s already holds %d messages, no history written", topic, present)
            return False
    return True


def write_history(
    producer: PulseProducer, factory: EventFactory, profile: Profile, settings: Settings, clock: Callable[[], float]
) -> None:
    """Produce HISTORY_EVENTS events over the past HISTORY_DAYS in time order, Kafka timestamp = event time."""
    total = settings.history_events
    end = clock()
    logger.info("writing %d history events over the past %g days", total, settings.history_days)
    started = last_log = time.monotonic()
    next_share = 0.1
    done = 0
    for batch in history(factory, profile, total, end - settings.history_days * DAY_S, end):
        for message in batch:
            if producer.stop.is_set() or not producer.send(message):
                logger.info("history stopped after %d of %d events", done, total)
                return
            done += 1
        now = time.monotonic()
        if done >= next_share * total or now - last_log >= PROGRESS_EVERY_S:
            logger.info(
                "history %d/%d (%.0f%%), %.0f events/s", done, total, 100 * done / total, done / (now - started)
            )
            last_log = now
            next_share = (int(10 * done / total) + 1) / 10
    elapsed = max(time.monotonic() - started, 1e-9)
    logger.info("history written: %d events in %.1f s (%.0f events/s)", done, elapsed, done / elapsed)


def stream_live(
    producer: PulseProducer, factory: EventFactory, profile: Profile, options: Options, clock: Callable[[], float]
) -> int:
    """Produce a Poisson stream at `rate(now) * multiplier` until stopped or max_events; return events sent.

    Arrivals are drawn ahead in small chunks; each event is sent when its time
    comes, with event timestamp and Kafka timestamp both equal to that time
    (fraud patterns move some events within the chunk, or just before it). If
    sending falls more than MAX_LAG_S behind (broker stalls), the schedule
    restarts from now rather than bursting to catch up.
    """
    limit = options.max_events
    t = clock()
    logger.info(
        "live stream: %.1f events/min now (x%g)%s",
        profile.rate(t) * options.rate_multiplier,
        options.rate_multiplier,
        f", stopping after {limit} events" if limit is not None else "",
    )
    sent = 0
    last_report = time.monotonic()
    while limit is None or sent < limit:
        n = LIVE_CHUNK if limit is None else min(LIVE_CHUNK, limit - sent)
        times = profile.arrivals(t, n, factory.rng, options.rate_multiplier)
        messages = factory.messages(np.floor(times * 1e6).astype(np.int64))
        t = float(times[-1])
        for message in messages:
            when = message.timestamp_ms / 1000
            if not producer.idle_until(when):
                return sent
            lag = clock() - when
            if lag > MAX_LAG_S:
                logger.warning("live stream fell %.1f s behind; restarting the schedule from now", lag)
                t = clock()
                break
            if not producer.send(message, live=True):
                return sent
            sent += 1
        if time.monotonic() - last_report >= LIVE_REPORT_EVERY_S:
            last_report = time.monotonic()
            logger.info("live: %d events, %.1f events/min now", sent, profile.rate(clock()) * options.rate_multiplier)
    return sent
