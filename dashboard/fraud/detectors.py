"""Velocity and amount-anomaly detectors, and `FraudDetector`, which runs all three rules. Pure."""

from __future__ import annotations

from typing import NamedTuple

from dashboard.fraud.geo import GeoDetector
from dashboard.fraud.rules import (
    AMOUNT_RATIO,
    GEO_MAX_KM,
    GEO_WINDOW_MS,
    LATENESS_MS,
    MAX_KEPT,
    MIN_HISTORY,
    VELOCITY_MAX_COUNT,
    VELOCITY_WINDOW_MS,
    Alert,
    TransactionLike,
)
from dashboard.fraud.windows import CustomerWindows
from dashboard.schema import FRAUD_AMOUNT, FRAUD_VELOCITY


class VelocityDetector:
    """Alert when more than `max_count` transactions of one customer fall in a window (x - window_ms, x].

    So two events are "within 2 minutes" when they are less than 120.000 s
    apart: six events spanning 119.999 s alert, six spanning 120.000 s do not.
    One alert per burst: after an alert whose window ends at x, the
    customer's next velocity alert needs a window ending at x + window_ms or
    later (a flood of one event per 15 s alerts every 2 minutes, not on
    every event). A late event (up to `lateness_ms` older than the
    customer's newest) counts in every window it falls in; its alert may
    then end at a later event. The alert names every transaction of that
    window, in time order.
    """

    def __init__(
        self,
        max_count: int = VELOCITY_MAX_COUNT,
        window_ms: int = VELOCITY_WINDOW_MS,
        lateness_ms: int = LATENESS_MS,
        max_kept: int = MAX_KEPT,
    ) -> None:
        if max_kept <= max_count:
            raise ValueError("max_kept must exceed max_count")
        self.max_count = max_count
        self.window_ms = window_ms
        self.windows: CustomerWindows[tuple[int, str]] = CustomerWindows(window_ms, lateness_ms, max_kept)

    def observe(self, tx: TransactionLike) -> Alert | None:
        """Add `tx` to its customer's window; return the alert it raises, if any."""
        customer, tid, t = tx.customer_id, tx.transaction_id, tx.timestamp_ms
        if customer is None or tid is None or t is None:
            return None
        placed = self.windows.insert(customer, t, (t, tid))
        if placed is None:
            return None
        recent, i = placed
        events = recent.events
        k = self.max_count + 1
        n = len(events)
        if n < k:
            return None
        window = self.window_ms
        # Runs of k consecutive events that contain event i, latest first.
        for start in range(min(i, n - k), max(0, i - k + 1) - 1, -1):
            last = start + k - 1
            if events[last][0] - events[start][0] < window:
                break
        else:
            return None
        end = events[last][0]
        if end < recent.mark + window:
            return None  # the same burst already alerted
        recent.mark = end
        while last + 1 < n and events[last + 1][0] == end:
            last += 1
        first = start
        while first > 0 and events[first - 1][0] > end - window:
            first -= 1
        ids = tuple(events[j][1] for j in range(first, last + 1))
        evidence = {"count": len(ids), "span_seconds": (end - events[first][0]) / 1000}
        return Alert(FRAUD_VELOCITY, customer, ids, evidence, end)


class AmountDetector:
    """Alert when an amount exceeds `ratio` x the customer's average over earlier transactions.

    Judged only once the customer has at least `min_history` earlier
    transactions; "earlier" means observed earlier (stream order, which is
    event-time order within a Kafka partition keyed by customer). The test is
    amount * count > ratio * sum, exact on integers: 10x is no alert, 10.01x
    is. Every transaction, the anomalous one included, then joins the
    running average (count and sum per customer, never evicted), so a
    customer whose spending really changes stops alerting.
    """

    def __init__(self, ratio: float = AMOUNT_RATIO, min_history: int = MIN_HISTORY) -> None:
        if min_history < 1:
            raise ValueError("min_history must be at least 1")
        self.ratio = ratio
        self.min_history = min_history
        self._stats: dict[str, list[float]] = {}

    def observe(self, tx: TransactionLike) -> Alert | None:
        """Judge `tx` against its customer's average, then add it; return the alert, if any."""
        customer, tid, t, amount = tx.customer_id, tx.transaction_id, tx.timestamp_ms, tx.amount
        if customer is None or tid is None or t is None or amount is None:
            return None
        stats = self._stats.get(customer)
        if stats is None:
            self._stats[customer] = [1, amount]
            return None
        count, total = stats
        alert = None
        if count >= self.min_history and amount * count > self.ratio * total:
            average = total / count
            evidence = {
                "amount": amount,
                "average": round(average, 2),
                "ratio": round(amount / average, 4) if average else None,
                "history": int(count),
            }
            alert = Alert(FRAUD_AMOUNT, customer, (tid,), evidence, t)
        stats[0] = count + 1
        stats[1] = total + amount
        return alert

    def customers(self) -> int:
        """Customers with a running average."""
        return len(self._stats)


class StateSize(NamedTuple):
    """How much a FraudDetector holds: averages, and customers and events in each window."""

    averages: int
    velocity_customers: int
    velocity_events: int
    geo_customers: int
    geo_events: int


class FraudDetector:
    """The three rules of DATA.md over one stream of transactions (feed one per Kafka partition).

    `observe(tx)` returns the alerts of `tx`, in the order velocity,
    geo_impossible, amount_anomaly. Transactions without transaction_id,
    customer_id or timestamp_ms are ignored; one without coordinates skips
    the geo rule, one without amount the amount rule. Deterministic: the same
    input gives the same alerts (event time only, no wall clock).
    """

    def __init__(
        self,
        *,
        velocity_count: int = VELOCITY_MAX_COUNT,
        velocity_window_ms: int = VELOCITY_WINDOW_MS,
        geo_km: float = GEO_MAX_KM,
        geo_window_ms: int = GEO_WINDOW_MS,
        amount_ratio: float = AMOUNT_RATIO,
        min_history: int = MIN_HISTORY,
        lateness_ms: int = LATENESS_MS,
        max_kept: int = MAX_KEPT,
    ) -> None:
        self.velocity = VelocityDetector(velocity_count, velocity_window_ms, lateness_ms, max_kept)
        self.geo = GeoDetector(geo_km, geo_window_ms, lateness_ms, max_kept)
        self.amount = AmountDetector(amount_ratio, min_history)

    def observe(self, tx: TransactionLike) -> list[Alert]:
        """Judge one transaction under every rule and remember it; return its alerts (usually [])."""
        alerts = []
        alert = self.velocity.observe(tx)
        if alert is not None:
            alerts.append(alert)
        alert = self.geo.observe(tx)
        if alert is not None:
            alerts.append(alert)
        alert = self.amount.observe(tx)
        if alert is not None:
            alerts.append(alert)
        return alerts

    @property
    def late_events(self) -> int:
        """Transactions too late (beyond lateness_ms) for the velocity window; they still count for amounts."""
        return self.velocity.windows.late

    def state_size(self) -> StateSize:
        """Sizes of the state held; O(customers), for tests and monitoring."""
        return StateSize(self.amount.customers(), *self.velocity.windows.size(), *self.geo.windows.size())
