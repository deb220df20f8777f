"""Transaction events: draw clean ones, inject rule breaks, apply fraud patterns, encode. Pure.

A batch goes through three stages, each with the same numpy Generator, so a
seed reproduces every byte:

1. `EventFactory.drafts` draws clean events for given event times, with the
   original generator's distributions (see `model`);
2. `inject_invalid` breaks a share INVALID_RATE of the events, one rule
   each (ERR_AMOUNT, ERR_TIME, ERR_DEVICE in equal shares), and records the
   codes so the producer can tell the truth in the INJECTED_HEADER header;
3. fraud stages (`Pattern`, today `dashboard.pulse.inject_fraud.FraudInjector`)
   rewrite valid events only: velocity bursts, far-away cities and amount
   spikes, a share FRAUD_RATE of the events, labelled for the FRAUD_HEADER
   headers; they also keep organic traffic below the fraud rules. Fraud comes
   after invalid injection so that fraud events stay valid and the stage
   knows which events the detectors will see.

Every event not injected is valid under `dashboard.core.validation.check` against
its own Kafka timestamp (the event time, in ms).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from dashboard.core.schema import (
    COMMISSION_TYPES,
    CUSTOMER_TYPES,
    FAILURE_REASONS,
    MERCHANT_CATEGORIES,
    PAYMENT_METHODS,
    STATUSES,
)
from dashboard.core.settings import Settings
from dashboard.pulse.batch import Batch, Message, Pattern, iso_utc_many
from dashboard.pulse.inject_fraud import FraudInjector
from dashboard.pulse.inject_invalid import inject_invalid
from dashboard.pulse.model import (
    AMOUNT_MU,
    AMOUNT_SIGMA,
    DEVICE_LIBRARY,
    DEVICE_METHODS,
    EVENT_SPREAD_DEG,
    PAYMENT_P,
    PENDING_RATE,
    Population,
    charges,
)
from dashboard.pulse.profile import Profile

HISTORY_BATCH = 10_000

_OBJ = {
    name: np.array(values, dtype=object)
    for name, values in {
        "category": MERCHANT_CATEGORIES,
        "method": PAYMENT_METHODS,
        "commission": COMMISSION_TYPES,
        "customer": CUSTOMER_TYPES,
        "reason": FAILURE_REASONS,
        "status": STATUSES,
    }.items()
}


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    """Return `n` version-4 UUID strings drawn from `rng` (reproducible, unlike uuid4)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    return [
        f"{h[j : j + 8]}-{h[j + 8 : j + 12]}-{h[j + 12 : j + 16]}-{h[j + 16 : j + 20]}-{h[j + 20 : j + 32]}"
        for j in range(0, 32 * n, 32)
    ]


class EventFactory:
    """Turns event times into messages for one population and one set of rates."""

    def __init__(
        self,
        population: Population,
        rng: np.random.Generator,
        *,
        declined_rate: float,
        invalid_rate: float,
        patterns: Sequence[Pattern] = (),
    ) -> None:
        self.population = population
        self.rng = rng
        self.declined_rate = declined_rate
        self.invalid_rate = invalid_rate
        self.patterns = tuple(patterns)

    def messages(self, event_us: np.ndarray) -> list[Message]:
        """Return encoded messages for int64 epoch-microsecond event times (all three stages), in time order."""
        batch = self.drafts(event_us)
        inject_invalid(batch, self.invalid_rate, self.rng)
        for pattern in self.patterns:
            pattern.apply(batch, self.rng)
        return batch.encode()

    def drafts(self, event_us: np.ndarray) -> Batch:
        """Draw clean events at `event_us`; Kafka timestamps are the event times in ms."""
        rng, pop = self.rng, self.population
        event_us = np.asarray(event_us, dtype=np.int64)
        n = len(event_us)
        cust = rng.integers(0, len(pop.customer_ids), n)
        merch = rng.integers(0, len(pop.merchant_ids), n)
        cat = pop.merchant_category[merch]
        method = rng.choice(len(PAYMENT_METHODS), size=n, p=PAYMENT_P)
        amount = np.floor(rng.lognormal(AMOUNT_MU[cat], AMOUNT_SIGMA[cat])).astype(np.int64)
        commission, vat = charges(amount)
        lat = pop.merchant_lat[merch] + rng.uniform(-EVENT_SPREAD_DEG, EVENT_SPREAD_DEG, n)
        lng = pop.merchant_lng[merch] + rng.uniform(-EVENT_SPREAD_DEG, EVENT_SPREAD_DEG, n)
        device = rng.integers(0, len(DEVICE_LIBRARY), n)
        u = rng.random(n)
        status = np.where(u < self.declined_rate, 1, np.where(u < self.declined_rate + PENDING_RATE, 2, 0))
        reason = _OBJ["reason"][rng.integers(0, len(FAILURE_REASONS), n)]
        reason[status != 1] = None  # failure_reason only when declined
        risk = rng.integers(1, 4, n)
        methods = _OBJ["method"][method].tolist()
        records = [
            {
                "transaction_id": tid,
                "timestamp": ts,
                "customer_id": pop.customer_ids[c],
                "merchant_id": pop.merchant_ids[m],
                "merchant_category": cat_name,
                "payment_method": pm,
                "amount": a,
                "location": {"lat": la, "lng": ln},
                "device_info": dict(DEVICE_LIBRARY[d]) if pm in DEVICE_METHODS else {},
                "status": st,
                "commission_type": ct,
                "commission_amount": co,
                "vat_amount": va,
                "total_amount": a + va + co,
                "customer_type": cu,
                "risk_level": rl,
                "failure_reason": fr,
            }
            for tid, ts, c, m, cat_name, pm, a, la, ln, d, st, ct, co, va, cu, rl, fr in zip(
                uuids(rng, n),
                iso_utc_many(event_us),
                cust.tolist(),
                merch.tolist(),
                _OBJ["category"][cat].tolist(),
                methods,
                amount.tolist(),
                lat.tolist(),
                lng.tolist(),
                device.tolist(),
                _OBJ["status"][status].tolist(),
                _OBJ["commission"][pop.merchant_commission[merch]].tolist(),
                commission.tolist(),
                vat.tolist(),
                _OBJ["customer"][pop.customer_type[cust]].tolist(),
                risk.tolist(),
                reason.tolist(),
                strict=True,
            )
        ]
        return Batch(records, (event_us // 1000).tolist(), [()] * n)


@dataclass(frozen=True)
class Streams:
    """Independent random streams, so history size never changes the population or the live stream's draws.

    (The runner's one `FraudInjector` does carry its state, recent customers and
    averages, from history into live: that continuity is what keeps the fraud
    ground truth exact across the seam.)
    """

    population: np.random.Generator
    history: np.random.Generator
    live: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int | None) -> Streams:
        """Spawn the three streams from `seed` (None: fresh OS entropy)."""
        population, history, live = np.random.SeedSequence(seed).spawn(3)
        return cls(np.random.default_rng(population), np.random.default_rng(history), np.random.default_rng(live))


def make_factory(
    settings: Settings, population: Population, rng: np.random.Generator, fraud: FraudInjector | None = None
) -> EventFactory:
    """Return the factory for `settings`: its declined and invalid rates, and its fraud stage.

    Pass the same `fraud` injector to the history and the live factory of one
    run; None makes a fresh one at FRAUD_RATE.
    """
    return EventFactory(
        population,
        rng,
        declined_rate=settings.declined_rate,
        invalid_rate=settings.invalid_rate,
        patterns=(fraud if fraud is not None else FraudInjector(population, settings.fraud_rate),),
    )


def history(
    factory: EventFactory, profile: Profile, count: int, start_s: float, end_s: float, batch: int = HISTORY_BATCH
) -> Iterator[list[Message]]:
    """Yield `count` events with times drawn from `profile` over [start_s, end_s), in time order, in batches.

    Each message's Kafka timestamp is its event time, so history passes the time rule.
    """
    times = profile.sample_times(count, start_s, end_s, factory.rng)
    event_us = np.floor(times * 1e6).astype(np.int64)
    for offset in range(0, count, batch):
        yield factory.messages(event_us[offset : offset + batch])
