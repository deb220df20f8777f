"""The amount-anomaly detector: an amount far above the customer's running average. Pure.

It runs its rule over its own state on every event; `FraudDetector`
(dashboard.fraud.detector) inlines the same bookkeeping.
"""

from __future__ import annotations

from dashboard.core.schema import FRAUD_AMOUNT
from dashboard.fraud.rules import (
    AMOUNT_RATIO,
    MIN_HISTORY,
    Alert,
    TransactionLike,
)


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
        #: customer -> [count, sum] of the amounts seen.
        self.stats: dict[str, list[float]] = {}

    def observe(self, tx: TransactionLike) -> Alert | None:
        """Judge `tx` against its customer's average, then add it; return the alert, if any."""
        customer, tid, t, amount = tx.customer_id, tx.transaction_id, tx.timestamp_ms, tx.amount
        if customer is None or tid is None or t is None or amount is None:
            return None
        stats = self.stats.get(customer)
        if stats is None:
            self.stats[customer] = [1, amount]
            return None
        count, total = stats
        alert = None
        if count >= self.min_history and amount * count > self.ratio * total:
            alert = self.alert(customer, tid, t, amount, count, total)
        stats[0] = count + 1
        stats[1] = total + amount
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
