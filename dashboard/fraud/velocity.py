"""The velocity detector: more than N transactions of one customer in a window. Pure.

It runs its rule over its own state on every event. `FraudDetector`
(dashboard.fraud.detector) runs `VelocityDetector.judge` over a window shared
with the geo rule.
"""

from __future__ import annotations

from typing import Any

from dashboard.core.schema import FRAUD_VELOCITY
from dashboard.fraud.rules import DEFAULT_LIMITS, Alert, Limits, TransactionLike
from dashboard.fraud.windows import CustomerWindows, Recent


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

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.max_count, self.window_ms = limits.velocity_count, limits.velocity_window_ms
        self.windows: CustomerWindows[tuple[int, str]] = CustomerWindows(
            self.window_ms, limits.lateness_ms, limits.max_kept, max_customers=limits.max_customers
        )

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
