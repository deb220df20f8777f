"""The amount-anomaly detector: an amount far above the customer's running average. Pure.

It runs its rule over its own state on every event; `FraudDetector`
(dashboard.fraud.detector) inlines the same bookkeeping.
"""

from __future__ import annotations

from collections import OrderedDict

from dashboard.core.schema import FRAUD_AMOUNT
from dashboard.fraud.rules import DEFAULT_LIMITS, Alert, Limits, TransactionLike
from dashboard.fraud.windows import NEVER

#: Idle customers' averages are looked for at most once per this much event time (O(1) when none is due).
EVICT_EVERY_MS = 1000


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

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.ratio, self.min_history = limits.amount_ratio, limits.min_history
        self.idle_ms, self.max_customers = limits.amount_idle_ms, limits.max_customers
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
