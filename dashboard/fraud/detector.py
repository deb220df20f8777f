"""`FraudDetector`: the three rules over one shared window, with exact shortcuts for the common case. Pure.

The ingest worker runs `observe` on every message (bench/fraud.py measures
it). Velocity and geo share one window per customer, so an event is
inserted once; its horizon is the longer rule window, and velocity reads
only its recent part (older events are at least `velocity_window_ms` older
than any accepted event, so they never complete a run). The insert of a
customer's newest event, by far the usual case, is inlined here. Most
events raise nothing, and two checks say so without running the rules:
- velocity: the newest event can only complete the run of it and its
  `max_count` predecessors, so one comparison decides (a late event runs
  `VelocityDetector.judge`);
- geo: each customer's window keeps a box, the ranges of latitude and
  longitude and the largest cos(latitude) of the points it holds. The new
  point grows the box; if the box's span under `GeoDetector.judge`'s cheap
  bound is within `max_km`, so is every pair in the box, and judge would
  pass over them all. This holds exactly, rounding included: floating-point
  subtraction, product and sum are monotonic. Otherwise the rule runs and
  the box is fitted again to the points left. Between fits the box only
  grows, so points that left the window leave it too large, never too small.
The single-rule detectors run their rule on every event; a unit test checks
that this detector raises exactly their alerts.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from dashboard.core.validation import PlainTransaction
from dashboard.fraud.amount import AmountDetector
from dashboard.fraud.geo import GeoDetector, fit_box
from dashboard.fraud.rules import DEFAULT_LIMITS, Alert, Limits, TransactionLike
from dashboard.fraud.velocity import VelocityDetector
from dashboard.fraud.windows import CustomerWindows

_RAD = math.pi / 180.0

#: A shared window's entry: time (ms), transaction id, then latitude, longitude (radians) and cos(latitude), or
#: three None for an event without coordinates.
_Entry = tuple[int, str, float | None, float | None, float | None]


class StateSize(NamedTuple):
    """How much a FraudDetector holds: averages, and the customers and events each windowed rule reads."""

    averages: int
    velocity_customers: int
    velocity_events: int
    geo_customers: int
    geo_events: int


def _located(entry: _Entry) -> bool:
    return entry[2] is not None


class FraudDetector:
    """The three rules of DATA.md over one stream of transactions (feed one per Kafka partition).

    `observe(tx)` returns the alerts of `tx`, in the order velocity,
    geo_impossible, amount_anomaly. Transactions without transaction_id,
    customer_id or timestamp_ms are ignored; one without coordinates skips
    the geo rule, one without amount the amount rule. Deterministic: the same
    input gives the same alerts (event time only, no wall clock).

    It raises exactly the alerts of the three single-rule detectors fed the
    same stream, but in two corner cases. An event more than `lateness_ms`
    older than an earlier one of another customer: by then the single-rule
    detectors may have dropped its customer; this one keeps the customer's
    velocity state as long as its geo state, and an event too late for
    velocity is too late for geo. And a customer's flood of more than
    `max_kept` events in the longer window, some without coordinates: here
    they all count against one cap.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.velocity = VelocityDetector(limits)
        self.geo = GeoDetector(limits)
        self.amount = AmountDetector(limits)
        # The rules' own windows (which check the arguments) stay empty: both read this one.
        horizon = max(limits.velocity_window_ms, limits.geo_window_ms)
        self.windows: CustomerWindows[_Entry] = CustomerWindows(
            horizon, limits.lateness_ms, limits.max_kept, on_promote=fit_box, max_customers=limits.max_customers
        )
        # Read on every event.
        self._run, self._velocity_ms, self._near = limits.velocity_count + 1, limits.velocity_window_ms, self.geo.near
        self._stats, self._min_history, self._ratio = self.amount.stats, limits.min_history, limits.amount_ratio

    def observe(self, tx: TransactionLike) -> list[Alert]:
        """Judge one transaction under every rule and remember it; return its alerts (usually [])."""
        return self.observe_fields(tx.customer_id, tx.transaction_id, tx.timestamp_ms, tx.amount, tx.lat, tx.lng)

    def observe_plain(self, tx: PlainTransaction) -> list[Alert]:
        """`observe` of a transaction `decode_plain` passed (the worker's hot path: no input object is built).

        The same fields as `inputs.plain_input(tx)` gives `observe`.
        """
        location = tx.location
        if location is None:
            return self.observe_fields(tx.customer_id, tx.transaction_id, tx.timestamp_ms, tx.amount, None, None)
        return self.observe_fields(
            tx.customer_id, tx.transaction_id, tx.timestamp_ms, tx.amount, location.lat, location.lng
        )

    def observe_fields(
        self,
        customer: str | None,
        tid: str | None,
        t: int | None,
        amount: float | None,
        lat: float | None,
        lng: float | None,
    ) -> list[Alert]:
        """`observe` of a transaction given by its fields."""
        if customer is None or tid is None or t is None:
            return []
        alerts: list[Alert] = []
        phi = lam = cos_phi = 0.0
        entry: _Entry
        if lat is not None and lng is not None:
            located = True
            phi, lam = lat * _RAD, lng * _RAD
            cos_phi = math.cos(phi)
            entry = (t, tid, phi, lam, cos_phi)
        else:
            located = False
            entry = (t, tid, None, None, None)
        windows = self.windows
        recent = windows.customers.get(customer)
        if recent is not None and recent.events[-1][0] <= t:
            # CustomerWindows.insert of the customer's newest event (the usual case), inlined.
            events = recent.events
            events.append(entry)
            cutoff = t - windows.keep_ms
            while events[0][0] <= cutoff:
                events.popleft()
            n = len(events)
            if n > windows.max_kept:  # by one at most: no more were kept before
                events.popleft()
                n -= 1
            i = n - 1
            if t > windows.watermark:
                windows.watermark = t
                if t >= windows.next_eviction:
                    windows.evict_idle()
        elif recent is None and windows.single.setdefault(customer, entry) is entry:
            # A new customer (insert's first branch, inlined): its only event, which no rule can raise on.
            unfiled = windows.unfiled
            unfiled.append(customer)
            if len(unfiled) > windows.room:  # more than max_customers held
                windows.shed_one()
            if t > windows.watermark:
                windows.watermark = t
                if t >= windows.next_eviction:
                    windows.evict_idle()
        else:
            placed = windows.insert(customer, t, entry)
            if placed is None:
                recent = None
            else:
                recent, i = placed
                events = recent.events
                n = len(events)
        if recent is not None:
            # Velocity: a run of k events that ends at the newest is the only one the newest can complete.
            k = self._run
            if n >= k and (i < n - 1 or t - events[n - k][0] < self._velocity_ms):
                alert = self.velocity.judge(customer, recent, i)
                if alert is not None:
                    alerts.append(alert)
            if located:
                # Geo: grow the box by the point; if its span is within max_km, so is every pair in it.
                # A NaN coordinate gets into the box (`not x >= lo` is true), so into the bound: the rule runs.
                lo_phi, hi_phi, lo_lam, hi_lam = recent.lo_phi, recent.hi_phi, recent.lo_lam, recent.hi_lam
                if not phi >= lo_phi:
                    recent.lo_phi = lo_phi = phi
                if phi > hi_phi:
                    recent.hi_phi = hi_phi = phi
                if not lam >= lo_lam:
                    recent.lo_lam = lo_lam = lam
                if lam > hi_lam:
                    recent.hi_lam = hi_lam = lam
                hi_cos = recent.hi_cos
                if cos_phi > hi_cos:
                    recent.hi_cos = hi_cos = cos_phi
                if not hi_phi - lo_phi + hi_cos * (hi_lam - lo_lam) <= self._near:
                    alert = self.geo.judge(customer, recent, i)
                    fit_box(recent)
                    if alert is not None:
                        alerts.append(alert)
        if amount is not None:
            # AmountDetector.observe, inlined.
            stats = self._stats.get(customer)
            if stats is None:
                self.amount.add(customer, amount, t)
            else:
                count, total, last = stats
                if count >= self._min_history and amount * count > self._ratio * total:
                    alerts.append(self.amount.alert(customer, tid, t, amount, count, total))
                stats[0] = count + 1
                stats[1] = total + amount
                if t > last:
                    stats[2] = t
                self._stats.move_to_end(customer)
            if t >= self.amount.due:  # at most once per EVICT_EVERY_MS of event time
                self.amount.evict(t)
        return alerts

    @property
    def late_events(self) -> int:
        """Transactions too late (beyond lateness_ms) for the velocity and geo windows; they still count for amounts."""
        return self.windows.late

    def held(self) -> dict[str, int]:
        """Customers with an average, and with a window (or one event), as a monitoring gauge samples them: O(1).

        (`state_size` walks every window: 0.26 s for 150,000 customers.)
        """
        windows = self.windows
        return {"averages": len(self.amount.stats), "window_customers": len(windows.customers) + len(windows.single)}

    def state_size(self) -> StateSize:
        """Averages held, and what each windowed rule reads of the shared window.

        O(customers), for tests and monitoring.
        """
        windows = self.windows
        return StateSize(
            self.amount.customers(),
            *windows.size(self.velocity.window_ms),
            *windows.size(self.geo.window_ms, _located),
        )
