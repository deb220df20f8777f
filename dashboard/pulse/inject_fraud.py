"""The generator's fraud stage: injected fraud patterns in a stream kept clean of organic ones. Pure.

`FraudInjector` runs after invalid injection and rewrites only valid events,
so every event it labels stays valid under `dashboard.core.validation`. It never
adds or removes events: a pattern takes ordinary events of the batch and
moves them to the pattern's times, customer and place. FRAUD_RATE is the
share of events that belong to an injected pattern (a credit of
FRAUD_RATE x events accrues per batch and each pattern spends its size).
Each pattern is one of three kinds with equal probability, so about 70% of
fraud events are burst members, 20% geo legs and 10% spikes:

- velocity: 6-8 payments of one customer spread over 30-110 s of event time
  (at ordinary Tehran merchants);
- geo_impossible: an ordinary payment in Tehran, then 1-4 minutes later an
  online payment of the same customer located in Isfahan, Mashhad, Shiraz or
  Tabriz (within 0.005 degree of the city centre; the device is where the
  buyer is, the merchant stays in Tehran);
- amount_anomaly: one payment of 20-50 x the customer's average over their
  earlier transactions, for a customer with at least MIN_HISTORY of them.

Every event of a pattern gets risk_level 5 (the original generator's only
signal) and a `FraudLabel` (rule, pattern id) that the producer sends as the
FRAUD_HEADER and FRAUD_PATTERN_HEADER headers. Pattern ids are unique per
injector; the runner shares one injector between history and live, so the
whole run is one ground truth.

Organic (unlabelled) traffic stays below the detector defaults
(`dashboard.fraud.rules`), so every velocity, geo or amount alert on Pulse
traffic names an injected event of its rule:

- velocity: an ordinary event whose customer already has 5 events in the
  preceding 121 s (a 1 s margin over the detector's 2 minutes) goes to
  another customer (`ledger.Ledger.redraw`). When no customer is free,
  `overflow` counts the event and the organic traffic does burst: that needs
  a load near what the customers can do without velocity, 5 events each per
  2 minutes, i.e. 2.5 x CUSTOMER_COUNT events per minute (reservations take
  a little of it). Measured: no overflow at 2130 events/min (EVENT_RATE 1000,
  PEAK_FACTOR 2.5 at its peak) with 1000 customers, nor at 1500/min with
  FRAUD_RATE 0.05; 12 in 20,000 events with 100 customers at the default
  EVENT_RATE's peak of 213/min; at EVENT_RATE 1000, PEAK_FACTOR 5 (2470/min)
  1000 customers overflow and 100 customers cannot keep up at all.
- geo: ordinary events all lie within about 31 km of each other. A pattern's
  customer is reserved from 2 minutes before the pattern to its end (to 5
  minutes after a far leg, which so pairs with nothing else): no new
  ordinary event of theirs falls there. A geo pair goes to a customer with at most 3
  events in the 2 minutes before, so it never adds up to a velocity alert.
  (Ordinary events before a burst join its window, and an ordinary Tehran
  payment 2-5 minutes before a far leg may pair with it: those alerts still
  name injected events of their rule.)
- amount: once a customer has MIN_HISTORY earlier transactions, an ordinary
  amount is capped at 10 x their running average (the detector alerts only
  above it); lognormal amounts reach that about once in 1,200 events.

"Earlier transactions" and "events" above mean those the detectors see:
`dashboard.fraud.inputs` feeds every event except ERR_TIME ones to velocity
and geo, and only valid ones to the amount rule, and the `Ledger` counts the
same. The mirror is exact as long as the detector reads the run from its
first event.

Time order: a pattern whose times run past the batch's last event keeps the
rest as pending events, which take ordinary events of a later batch at their
exact times; those times fall between the two batches, so the stream stays
in time order.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np

from dashboard.core.schema import CUSTOMER_TYPES, ERR_TIME, FRAUD_AMOUNT, FRAUD_GEO, FRAUD_VELOCITY
from dashboard.fraud.rules import AMOUNT_RATIO, GEO_WINDOW_MS, VELOCITY_MAX_COUNT, VELOCITY_WINDOW_MS
from dashboard.pulse.batch import Batch, FraudLabel, iso_utc
from dashboard.pulse.ledger import FREE, MARGIN_MS, Ledger
from dashboard.pulse.model import DEVICE_LIBRARY, Population, charges

#: Far-away cities of geo patterns: (lat, lng) of their centres.
CITIES: Final = MappingProxyType(
    {
        "Isfahan": (32.6546, 51.6680),
        "Mashhad": (36.2605, 59.6168),
        "Shiraz": (29.5918, 52.5837),
        "Tabriz": (38.0800, 46.2919),
    }
)
CITY_SPREAD_DEG: Final = 0.005
KINDS: Final = (FRAUD_VELOCITY, FRAUD_GEO, FRAUD_AMOUNT)
BURST_SIZE: Final = (6, 8)
BURST_SPAN_S: Final = (30.0, 110.0)
GEO_GAP_S: Final = (60.0, 240.0)
SPIKE_FACTOR: Final = (20.0, 50.0)
#: Credit kept beyond one batch's share, when patterns could not be placed.
CREDIT_SLACK: Final = 16.0

_CITY_POINTS = tuple(CITIES.values())
_PROVISIONAL = 0  # pattern id of a spike whose customer is chosen in the pass


@dataclass(frozen=True)
class Slot:
    """One event of a planned pattern: its time, customer, label and, for a far leg, place and device."""

    time_us: int
    customer: int
    label: FraudLabel
    point: tuple[float, float] | None = None
    device: int = 0


class FraudInjector:
    """The fraud `Pattern` of the generator: injects patterns, keeps organic traffic clean (module docstring).

    Stateful across batches (its `Ledger`, pending pattern events, credit);
    all randomness comes from the `rng` of `apply`.
    """

    def __init__(self, population: Population, rate: float) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fraud rate {rate} is not in 0..1")
        self.rate = rate
        self._ids = population.customer_ids
        self._index = {cid: i for i, cid in enumerate(self._ids)}
        self._types = tuple(CUSTOMER_TYPES[t] for t in population.customer_type.tolist())
        self.ledger = Ledger(len(self._ids))
        self._next: tuple[str, int] | None = None
        self._pattern = 0
        self.pending: list[Slot] = []
        self.credit = 0.0
        #: Fraud events labelled, by rule.
        self.labelled: Counter[str] = Counter()
        #: Pattern events that found no event to take (the pattern stays incomplete).
        self.dropped = 0

    @property
    def overflow(self) -> int:
        """Ordinary events left on a customer at the velocity limit (see the module docstring)."""
        return self.ledger.overflow

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        """Place pending and new patterns on the batch's valid events, then clean the organic ones."""
        n = len(batch)
        if n == 0:
            return
        batch.sort()
        kafka_ms = batch.kafka_ms
        lo_us, hi_us = kafka_ms[0] * 1000, kafka_ms[-1] * 1000 + 999
        self.ledger.prune(kafka_ms[0])
        free = [i for i, codes in enumerate(batch.injected) if not codes]
        taken: dict[int, Slot] = {}
        due = [s for s in self.pending if s.time_us <= hi_us]
        self.pending = [s for s in self.pending if s.time_us > hi_us]
        for slot in due:
            self._take(free, kafka_ms, slot, taken)
        self.credit = min(self.credit + self.rate * n, self.rate * n + CREDIT_SLACK)
        while free:
            if self._next is None:  # drawn once and kept until placed, so big patterns are not starved
                kind = KINDS[int(rng.integers(len(KINDS)))]
                size = {FRAUD_VELOCITY: int(rng.integers(BURST_SIZE[0], BURST_SIZE[1] + 1)), FRAUD_GEO: 2}.get(kind, 1)
                self._next = (kind, size)
            kind, size = self._next
            if self.credit < size:
                break
            if kind == FRAUD_AMOUNT:
                batch.fraud[free.pop(int(rng.integers(len(free))))] = FraudLabel(FRAUD_AMOUNT, _PROVISIONAL)
            else:
                slots = self._plan(kind, size, free, kafka_ms, lo_us, hi_us, rng)
                if slots is None:
                    break
                for slot in slots:
                    if slot.time_us <= hi_us:
                        self._take(free, kafka_ms, slot, taken)
                    else:
                        self.pending.append(slot)
            self.credit -= size
            self._next = None
        for i, slot in taken.items():
            self._rewrite(batch, i, slot)
        batch.sort()
        self._clean_pass(batch, rng)

    def _plan(
        self,
        kind: str,
        size: int,
        free: list[int],
        kafka_ms: list[int],
        lo_us: int,
        hi_us: int,
        rng: np.random.Generator,
    ) -> list[Slot] | None:
        """Times, customer and label of a new burst or geo pair; None if it cannot be placed now."""
        anchor = kafka_ms[free[int(rng.integers(len(free)))]] * 1000 + int(rng.integers(1000))
        if kind == FRAUD_VELOCITY:
            span = int(rng.uniform(*BURST_SPAN_S) * 1e6)
            offsets = [0, *sorted(rng.integers(0, span + 1, size - 2).tolist()), span]
        else:
            span = int(rng.uniform(*GEO_GAP_S) * 1e6)
            offsets = [0, span]
        if anchor + span > hi_us and hi_us - span >= lo_us:
            anchor = hi_us - span  # keep the pattern inside the batch when the batch is long enough
        times = [anchor + off for off in offsets]
        if sum(t <= hi_us for t in times) > len(free):
            return None
        # Reserved: 2 minutes before (velocity), and 5 minutes after a far leg (so it pairs with nothing else).
        after = GEO_WINDOW_MS if kind == FRAUD_GEO else 0
        zone = (times[0] // 1000 - VELOCITY_WINDOW_MS - MARGIN_MS, times[-1] // 1000 + after + MARGIN_MS)
        # A burst may follow ordinary events (its alert names burst events all the same); two geo legs
        # after 4 ordinary events in 2 minutes would make a velocity alert without injected velocity events.
        customer = self.ledger.pattern_customer(zone, VELOCITY_MAX_COUNT - 2 if kind == FRAUD_GEO else None, rng)
        if customer is None:
            return None
        self._pattern += 1
        label = FraudLabel(kind, self._pattern)
        slots = [Slot(t, customer, label) for t in times]
        if kind == FRAUD_GEO:
            lat, lng = _CITY_POINTS[int(rng.integers(len(_CITY_POINTS)))]
            jitter = rng.uniform(-CITY_SPREAD_DEG, CITY_SPREAD_DEG, 2).tolist()
            point = (lat + jitter[0], lng + jitter[1])
            slots[-1] = Slot(times[-1], customer, label, point, int(rng.integers(len(DEVICE_LIBRARY))))
        return slots

    def _take(self, free: list[int], kafka_ms: list[int], slot: Slot, taken: dict[int, Slot]) -> None:
        """Give `slot` the free event nearest in time (or drop it when none is left)."""
        if not free:
            self.dropped += 1
            return
        t_ms = slot.time_us // 1000
        pos = bisect_left(free, t_ms, key=kafka_ms.__getitem__)
        if pos == len(free) or (pos > 0 and t_ms - kafka_ms[free[pos - 1]] <= kafka_ms[free[pos]] - t_ms):
            pos -= 1
        taken[free.pop(pos)] = slot

    def _rewrite(self, batch: Batch, i: int, slot: Slot) -> None:
        """Make event `i` the slot's event: time, customer, risk 5, label, and the far place if any."""
        record = batch.records[i]
        record["timestamp"] = iso_utc(slot.time_us)
        batch.kafka_ms[i] = slot.time_us // 1000
        self._set_customer(record, slot.customer)
        record["risk_level"] = 5
        if slot.point is not None:
            record["location"] = {"lat": slot.point[0], "lng": slot.point[1]}
            record["payment_method"] = "online"
            record["device_info"] = dict(DEVICE_LIBRARY[slot.device])
        batch.fraud[i] = slot.label
        self.labelled[slot.label.rule] += 1

    def _clean_pass(self, batch: Batch, rng: np.random.Generator) -> None:
        """In time order: choose spike customers, move ordinary events off busy customers, cap amounts."""
        ledger = self.ledger
        records, kafka_ms, injected, fraud = batch.records, batch.kafka_ms, batch.injected, batch.fraud
        for i, record in enumerate(records):
            if ERR_TIME in injected[i]:
                continue  # the detectors never see it
            t = kafka_ms[i]
            c = self._index[record["customer_id"]]
            label = fraud[i]
            if label is not None and label.pattern == _PROVISIONAL:
                spiked = ledger.spike_customer(t, rng)
                if spiked is not None:
                    self._spike(record, spiked, rng)
                    self._pattern += 1
                    fraud[i] = FraudLabel(FRAUD_AMOUNT, self._pattern)
                    self.labelled[FRAUD_AMOUNT] += 1
                    ledger.remember(spiked, t, record["amount"])
                    continue
                fraud[i] = label = None
                self.credit += 1  # no customer with history yet: a later batch spends it
            if label is None and ledger.state(c, t) != FREE:
                c = ledger.redraw(c, t, rng)
                self._set_customer(record, c)
            if injected[i]:  # invalid: its amount neither raises nor feeds the amount rule
                ledger.remember(c, t, None)
                continue
            cap = ledger.cap(c)
            if cap is not None and record["amount"] > cap:
                _set_amount(record, cap)
            ledger.remember(c, t, record["amount"])

    def _spike(self, record: dict[str, Any], c: int, rng: np.random.Generator) -> None:
        """Give `record` to customer `c` with 20-50 x their average (always above AMOUNT_RATIO x)."""
        count, total = self.ledger.count[c], self.ledger.total[c]
        amount = max(math.ceil(rng.uniform(*SPIKE_FACTOR) * total / count), AMOUNT_RATIO * total // count + 1)
        self._set_customer(record, c)
        record["risk_level"] = 5
        _set_amount(record, amount)

    def _set_customer(self, record: dict[str, Any], c: int) -> None:
        record["customer_id"] = self._ids[c]
        record["customer_type"] = self._types[c]


def _set_amount(record: dict[str, Any], amount: int) -> None:
    """Set amount, commission, VAT and total as drafts compute them; an injected ERR_AMOUNT stays broken."""
    offset = record["total_amount"] - record["amount"] - record["vat_amount"] - record["commission_amount"]
    commission_of, vat_of = charges(np.array([amount], dtype=np.int64))
    commission, vat = int(commission_of[0]), int(vat_of[0])
    total = amount + vat + commission
    if offset:
        total = total + offset if total + offset >= 0 else total + 1
    record["amount"] = amount
    record["commission_amount"] = commission
    record["vat_amount"] = vat
    record["total_amount"] = total
