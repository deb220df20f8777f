"""The generator's ledger of what the fraud detectors will have seen of each customer. Pure.

"Seen" means every event except ERR_TIME ones, exactly what
`dashboard.fraud.inputs` feeds the detectors; `remember` must be called for
those, in time order. The ledger keeps, per customer, the event times of the
last 2 minutes (plus a 1 s margin against ms rounding), the running count and
sum of amounts, and reservations: intervals kept free of ordinary events
around an injected pattern. From these it answers the generator's questions:
may this customer take an ordinary event now, who else may, who may carry a
pattern, who has enough history for a spike.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import numpy as np

from dashboard.fraud.rules import AMOUNT_RATIO, GEO_WINDOW_MS, MIN_HISTORY, VELOCITY_MAX_COUNT, VELOCITY_WINDOW_MS

#: Random customers tried before giving up (or, for ordinary events, scanning).
REDRAW_TRIES: Final = 64
#: Customers scanned in order, from a random one, when random draws found none free.
SCAN_LIMIT: Final = 1024
#: Widening of the generator's windows over the detector's, against ms rounding.
MARGIN_MS: Final = 1_000
FREE, FULL, RESERVED = 0, 1, 2
_NEVER = -(2**62)


class Ledger:
    """Per-customer recent times, running amounts and reservations (customers are indexes)."""

    def __init__(self, customer_count: int) -> None:
        self.customer_count = customer_count
        self.recent: list[deque[int]] = [deque() for _ in range(customer_count)]
        self.last = [_NEVER] * customer_count
        self.count = [0] * customer_count
        self.total = [0] * customer_count
        #: Customers with at least MIN_HISTORY events, in the order they reached it.
        self.eligible: list[int] = []
        self.zones: dict[int, list[tuple[int, int]]] = {}
        #: Ordinary events left on a customer at the velocity limit (no free customer found).
        self.overflow = 0

    def remember(self, c: int, t: int, amount: int | None) -> None:
        """Count one seen event of customer `c` at `t` (ms, not before any earlier call).

        `amount` is None for an invalid event: it counts for velocity and geo,
        not for the amount rule's average (as in `dashboard.fraud.inputs`).
        """
        self.recent[c].append(t)
        self.last[c] = t
        if amount is None:
            return
        self.count[c] += 1
        self.total[c] += amount
        if self.count[c] == MIN_HISTORY:
            self.eligible.append(c)

    def state(self, c: int, t: int) -> int:
        """FREE if customer `c` may take an ordinary event at `t` (ms), FULL at the velocity limit, or RESERVED."""
        recent = self.recent[c]
        cutoff = t - VELOCITY_WINDOW_MS - MARGIN_MS
        while recent and recent[0] <= cutoff:
            recent.popleft()
        zones = self.zones.get(c)
        if zones and any(s <= t <= e for s, e in zones):
            return RESERVED
        return FULL if len(recent) >= VELOCITY_MAX_COUNT else FREE

    def redraw(self, c: int, t: int, rng: np.random.Generator) -> int:
        """A customer FREE at `t`: REDRAW_TRIES random draws, then a scan of up to SCAN_LIMIT customers.

        If none is free, `overflow` counts the event and it goes to a FULL
        customer drawn (else stays with `c`): an organic velocity burst.
        """
        n = self.customer_count
        draws = rng.integers(0, n, REDRAW_TRIES + 1).tolist()
        fallback = c
        for c2 in draws[:-1]:
            state = self.state(c2, t)
            if state == FREE:
                return int(c2)
            if state == FULL and fallback == c:
                fallback = int(c2)
        for k in range(min(n, SCAN_LIMIT)):
            c2 = (draws[-1] + k) % n
            if self.state(c2, t) == FREE:
                return c2
        self.overflow += 1
        return fallback

    def pattern_customer(self, zone: tuple[int, int], most: int | None, rng: np.random.Generator) -> int | None:
        """Reserve `zone` (ms) for a random customer with no reservation there and at most `most` events in it
        so far (None: any number); return the customer, or None if REDRAW_TRIES draws found none."""
        start, end = zone
        for c in rng.integers(0, self.customer_count, REDRAW_TRIES).tolist():
            if most is not None and self.last[c] >= start and sum(t >= start for t in self.recent[c]) > most:
                continue
            zones = self.zones.get(c)
            if zones and any(s <= end and e >= start for s, e in zones):
                continue
            self.zones.setdefault(c, []).append(zone)
            return int(c)
        return None

    def spike_customer(self, t: int, rng: np.random.Generator) -> int | None:
        """A random customer with MIN_HISTORY seen events, FREE at `t`, or None."""
        eligible = self.eligible
        if not eligible:
            return None
        for j in rng.integers(0, len(eligible), REDRAW_TRIES).tolist():
            if self.state(eligible[j], t) == FREE:
                return eligible[j]
        return None

    def cap(self, c: int) -> int | None:
        """The largest amount that is no amount anomaly for `c` now (AMOUNT_RATIO x average), or None."""
        count = self.count[c]
        return AMOUNT_RATIO * self.total[c] // count if count >= MIN_HISTORY else None

    def prune(self, t: int) -> None:
        """Forget reservations that all ended long enough before `t` (ms) to matter no more."""
        limit = t - GEO_WINDOW_MS - MARGIN_MS
        for c in [c for c, zones in self.zones.items() if all(e < limit for _, e in zones)]:
            del self.zones[c]
