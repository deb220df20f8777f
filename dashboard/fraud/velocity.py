"""Velocity and amount-anomaly detectors. Pure.

Each runs its rule over its own state on every event. `FraudDetector`
(dashboard.fraud.detector) runs `VelocityDetector.judge` over a window shared
with the geo rule, and the amount rule's bookkeeping inlined.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from dashboard.core.schema import FRAUD_AMOUNT, FRAUD_VELOCITY
from dashboard.fraud.rules import (
    AMOUNT_IDLE_MS,
    AMOUNT_MAX_CUSTOMERS,
    AMOUNT_RATIO,
    LATENESS_MS,
    MAX_KEPT,
    MIN_HISTORY,
    VELOCITY_MAX_COUNT,
    VELOCITY_WINDOW_MS,
    Alert,
    TransactionLike,
)
from dashboard.fraud.windows import EVICT_EVERY_MS, NEVER, CustomerWindows, Recent


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
        return self.judge(customer, *placed)

    def judge(self, customer: str, recent: Recent[Any], i: int) -> Alert | None:
        """The alert of the event just inserted at `recent.events[i]`, if any; notes it in `recent.mark`.

        Entries are (time, transaction id, ...). The window may hold events
        older than this rule's horizon (a window shared with a longer rule):
        they cannot complete a run with an accepted event, being at least
        `window_ms` older than it.
        """
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
    running average (count and sum per customer), so a customer whose
    spending really changes stops alerting.

    Bounded: `evict(now_ms)` forgets customers not seen for more than
    `idle_ms` of event time (the ingest worker's FRAUD_LOOKBACK_DAYS: a
    replay after a restart would not see them either), and a new customer
    beyond `max_customers` evicts the least recently seen one. `stats` is
    ordered least recently seen first.
    """

    def __init__(
        self,
        ratio: float = AMOUNT_RATIO,
        min_history: int = MIN_HISTORY,
        idle_ms: int = AMOUNT_IDLE_MS,
        max_customers: int = AMOUNT_MAX_CUSTOMERS,
    ) -> None:
        if min_history < 1 or idle_ms < 0 or max_customers < 1:
            raise ValueError("need min_history >= 1, idle_ms >= 0 and max_customers >= 1")
        self.ratio = ratio
        self.min_history = min_history
        self.idle_ms = idle_ms
        self.max_customers = max_customers
        #: customer -> [count, sum of the amounts seen, newest event time (ms)], least recently seen first.
        self.stats: OrderedDict[str, list[float]] = OrderedDict()
        self.evicted = 0
        self.due = NEVER  # event time at which idle customers are next looked for

    def add(self, customer: str, amount: float, t: int) -> list[float]:
        """Start a customer's running average with one amount; evict the least recently seen beyond the bound."""
        stats = self.stats
        entry = stats[customer] = [1, amount, t]
        if len(stats) > self.max_customers:
            stats.popitem(last=False)
            self.evicted += 1
        return entry

    def evict(self, now_ms: int) -> None:
        """Forget the customers, least recently seen first, whose newest event is over `idle_ms` before `now_ms`."""
        self.due = now_ms + EVICT_EVERY_MS  # at most once per EVICT_EVERY_MS of event time
        stats, cutoff = self.stats, now_ms - self.idle_ms
        while stats:
            oldest = next(iter(stats))
            if stats[oldest][2] >= cutoff:
                return
            del stats[oldest]
            self.evicted += 1

    def observe(self, tx: TransactionLike) -> Alert | None:
        """Judge `tx` against its customer's average, then add it; return the alert, if any."""
        customer, tid, t, amount = tx.customer_id, tx.transaction_id, tx.timestamp_ms, tx.amount
        if customer is None or tid is None or t is None or amount is None:
            return None
        if t >= self.due:
            self.evict(t)
        stats = self.stats.get(customer)
        if stats is None:
            self.add(customer, amount, t)
            return None
        count, total, last = stats
        alert = None
        if count >= self.min_history and amount * count > self.ratio * total:
            alert = self.alert(customer, tid, t, amount, count, total)
        stats[0] = count + 1
        stats[1] = total + amount
        stats[2] = max(last, t)
        self.stats.move_to_end(customer)
        return alert

    @staticmethod
    def alert(customer: str, tid: str, t: int, amount: float, count: float, total: float) -> Alert:
        """The alert of an amount judged anomalous against `count` earlier transactions summing to `total`."""
        average = total / count
        evidence = {
            "amount": amount,
            "average": round(average, 2),
            "ratio": round(amount / average, 4) if average else None,
            "history": int(count),
        }
        return Alert(FRAUD_AMOUNT, customer, (tid,), evidence, t)

    def customers(self) -> int:
        """Customers with a running average."""
        return len(self.stats)
