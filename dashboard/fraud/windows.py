"""Per-customer recent events in event-time order, bounded in time and count. Pure.

Shared by the velocity and geo detectors. Each customer keeps a deque of
entries, tuples whose first element is the event time in ms, sorted by time. An event arriving out of order is
inserted in place, searching from the newest end, so an event a few seconds
late costs a few steps; an event more than `lateness_ms` older than the
customer's newest is refused ("too late") and only counted.

Bounds, all in event time (no wall clock, so a replay behaves the same):
- a customer's deque drops events older than its newest minus
  (horizon_ms + lateness_ms): no later accepted event can fall within
  horizon_ms of them;
- at most `max_kept` events per customer (the oldest go first);
- a customer whose newest event is older than the newest event seen by this
  object minus (horizon_ms + lateness_ms) is dropped entirely, at the next
  check (at most one per second of event time). Customers are kept in
  arrival order (least recently seen first), so this costs amortised O(1)
  per event. Feed one object per Kafka partition: a partition lagging far
  behind another would otherwise lose its customers' state early.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any, Generic, TypeVar

#: An entry: a tuple whose first element is the event time (ms).
E = TypeVar("E", bound=tuple[Any, ...])

#: Event time before any real one: `Recent.mark` of a customer that never raised an alert.
NEVER = -(2**62)
#: Idle customers are looked for at most once per this much event time.
EVICT_EVERY_MS = 1000


class Recent(Generic[E]):
    """One customer's recent entries (sorted by event time) and a mark a detector may use."""

    __slots__ = ("events", "mark")

    def __init__(self) -> None:
        self.events: deque[E] = deque()
        self.mark = NEVER


class CustomerWindows(Generic[E]):
    """Recent events of every active customer; see the module docstring for the bounds."""

    def __init__(self, horizon_ms: int, lateness_ms: int, max_kept: int) -> None:
        if horizon_ms <= 0 or lateness_ms < 0 or max_kept < 1:
            raise ValueError("need horizon_ms > 0, lateness_ms >= 0 and max_kept >= 1")
        self.horizon_ms = horizon_ms
        self.lateness_ms = lateness_ms
        self.max_kept = max_kept
        self.keep_ms = horizon_ms + lateness_ms
        self.watermark = NEVER
        self._next_eviction = NEVER
        self.late = 0
        self._customers: OrderedDict[str, Recent[E]] = OrderedDict()

    def insert(self, customer: str, t: int, entry: E) -> tuple[Recent[E], int] | None:
        """Insert `entry` (whose first element is `t`) in time order, after equal times; return window and index.

        None when the event is too late: more than lateness_ms older than the
        customer's newest event, or older than everything kept at max_kept.
        """
        customers = self._customers
        recent = customers.get(customer)
        if recent is None:
            recent = customers[customer] = Recent()
        else:
            customers.move_to_end(customer)
        events = recent.events
        if not events or events[-1][0] <= t:
            events.append(entry)
            i = len(events) - 1
        else:
            if t < events[-1][0] - self.lateness_ms:
                self.late += 1
                return None
            i = len(events) - 1
            while i > 0 and events[i - 1][0] > t:
                i -= 1
            events.insert(i, entry)
        cutoff = events[-1][0] - self.keep_ms
        while events[0][0] <= cutoff or len(events) > self.max_kept:
            events.popleft()
            i -= 1
        if t > self.watermark:
            self.watermark = t
            if t >= self._next_eviction:  # at most once per second of event time
                self._next_eviction = t + EVICT_EVERY_MS
                self._evict_idle()
        if i < 0:  # dropped at once by max_kept
            self.late += 1
            return None
        return recent, i

    def _evict_idle(self) -> None:
        """Drop customers, least recently seen first, whose newest event left the horizon."""
        customers = self._customers
        limit = self.watermark - self.keep_ms
        while customers:
            first = next(iter(customers))
            if customers[first].events[-1][0] >= limit:
                return
            del customers[first]

    def size(self) -> tuple[int, int]:
        """(customers with state, events kept); O(customers), for tests and monitoring."""
        return len(self._customers), sum(len(r.events) for r in self._customers.values())
