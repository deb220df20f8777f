"""Per-customer recent events in event-time order, bounded in time and count. Pure.

`FraudDetector` keeps one such window for the velocity and geo rules together
(its horizon is the longer rule window; velocity reads only its recent part)
and inlines `insert` for a customer's newest event; `VelocityDetector` and
`GeoDetector` alone keep one each. Each customer keeps a deque of entries,
tuples whose first element is the event time in ms, sorted by time; a
customer with one event so far keeps that entry alone, in `single` (no rule
can raise on a customer's only event, so `insert` returns None for it): on
a stream where most customers pay once in a while (Pulse's, or millions of
distinct customers) a deque and its `Recent` cost about 1 kB and a tenth
of the worker's time per message, for nothing. The second event makes the
customer's `Recent` (`on_promote` fits what a rule notes of the first). An event
arriving out of order is inserted in place, searching from the newest end, so
an event a few seconds late costs a few steps; an event more than
`lateness_ms` older than the customer's newest is refused ("too late") and
only counted.

Bounds, all in event time (no wall clock, so a replay behaves the same):
- a customer's deque drops events older than its newest minus
  (horizon_ms + lateness_ms): no later accepted event can fall within
  horizon_ms of them;
- at most `max_kept` events per customer (the oldest go first);
- a customer whose newest event is older than the newest event seen by this
  object minus (horizon_ms + lateness_ms) is dropped entirely, within a
  minute of event time. The check runs at most once per minute of event
  time, over an eviction queue: one bucket per minute, each customer filed
  in the bucket of its newest event (a new one at the next check). (Once
  a second, it ran on nearly every event of a stream of a few events a
  second, as Pulse's default and its history are.) When a
  bucket comes due, its customers are dropped or, if active since, filed
  again under their newest event: amortised O(1) per event, nothing at all
  on most events. Feed one object per Kafka partition: a partition lagging
  far behind another would otherwise lose its customers' state early.
"""

from __future__ import annotations

import heapq
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

#: An entry: a tuple whose first element is the event time (ms).
E = TypeVar("E", bound=tuple[Any, ...])

#: Event time before any real one: `Recent.mark` of a customer that never raised an alert.
NEVER = -(2**62)
#: Idle customers are looked for at most once per this much event time; also the eviction bucket width.
EVICT_EVERY_MS = 60_000
_INF = float("inf")


class Recent(Generic[E]):
    """One customer's recent entries (sorted by event time) and what the rules note about them.

    `mark` is the velocity rule's (end of its last alert window). The box
    (`lo_phi`..`hi_cos`, radians) is `FraudDetector`'s: it contains every
    located entry kept (and maybe some dropped), or is NaN (`geo.fit_box`).
    """

    __slots__ = ("events", "hi_cos", "hi_lam", "hi_phi", "lo_lam", "lo_phi", "mark")

    def __init__(self) -> None:
        self.events: deque[E] = deque()
        self.mark = NEVER
        self.lo_phi = self.lo_lam = _INF  # the empty box
        self.hi_phi = self.hi_lam = -_INF
        self.hi_cos = 0.0  # at least 0, so that hi_cos * (hi_lam - lo_lam) bounds every pair's term, cos < 0 too


class CustomerWindows(Generic[E]):
    """Recent events of every active customer; see the module docstring for the bounds."""

    def __init__(
        self,
        horizon_ms: int,
        lateness_ms: int,
        max_kept: int,
        on_promote: Callable[[Recent[E]], None] | None = None,
        max_customers: int | None = None,
    ) -> None:
        if horizon_ms <= 0 or lateness_ms < 0 or max_kept < 1:
            raise ValueError("need horizon_ms > 0, lateness_ms >= 0 and max_kept >= 1")
        self.horizon_ms = horizon_ms
        self.lateness_ms = lateness_ms
        self.max_kept = max_kept
        self.keep_ms = horizon_ms + lateness_ms
        self.watermark = NEVER
        self.next_eviction = NEVER  # event time at which `evict_idle` is due
        self.late = 0
        self.customers: dict[str, Recent[E]] = {}
        self.single: dict[str, E] = {}  # customers with one event: that entry (in neither dict: no state)
        self.on_promote = on_promote  # called with a customer's new Recent, holding its first event
        self.max_customers = max_customers if max_customers is not None else sys.maxsize
        self.shed = 0  # customers dropped by max_customers (active ones: their windows start again)
        # Eviction queue: bucket (EVICT_EVERY_MS) -> customers filed there (a list; a deque once shed_one takes one).
        self._due: dict[int, list[str] | deque[str]] = {}
        self._seconds: list[int] = []  # heap of the keys of _due
        self.unfiled: list[str] = []  # customers not filed yet
        # New customers that fit before max_customers: held = max_customers - room + len(unfiled), set whenever
        # `unfiled` is emptied (a promotion holds as many), so the check per new customer is len(unfiled) > room.
        self.room = self.max_customers

    def insert(self, customer: str, t: int, entry: E) -> tuple[Recent[E], int] | None:
        """Insert `entry` (whose first element is `t`) in time order, after equal times; return window and index.

        None when there is nothing to judge: the event is the customer's only
        one (kept in `single`), or it is too late: more than lateness_ms older
        than the customer's newest event, or older than everything kept at
        max_kept.
        """
        recent = self.customers.get(customer)
        if recent is None:
            first = self.single.setdefault(customer, entry)
            if first is entry:  # a new customer
                unfiled = self.unfiled
                unfiled.append(customer)
                if len(unfiled) > self.room:
                    self.shed_one()
                self.advance(t)
                return None
            recent = self.promote(customer, first)
        events = recent.events
        if events[-1][0] <= t:  # the usual case: the customer's newest event
            events.append(entry)
            cutoff = t - self.keep_ms
            while events[0][0] <= cutoff or len(events) > self.max_kept:
                events.popleft()
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
            if i < 0:  # dropped at once by max_kept
                self.late += 1
                return None
        self.advance(t)
        return recent, i

    def advance(self, t: int) -> None:
        """Move the watermark to event time `t` if later; drop idle customers when due."""
        if t > self.watermark:
            self.watermark = t
            if t >= self.next_eviction:
                self.evict_idle()

    def promote(self, customer: str, first: E) -> Recent[E]:
        """Make the `Recent` of a customer that had one event, `first`; it stays filed for eviction."""
        del self.single[customer]
        recent = self.customers[customer] = Recent()
        recent.events.append(first)
        if self.on_promote is not None:
            self.on_promote(recent)
        return recent

    def __contains__(self, customer: object) -> bool:
        return customer in self.customers or customer in self.single

    def held(self) -> set[str]:
        """Every customer with state."""
        return set(self.customers) | set(self.single)

    def events_of(self, customer: str) -> list[E]:
        """The entries kept of `customer`, oldest first (none when it has no state)."""
        recent = self.customers.get(customer)
        if recent is not None:
            return list(recent.events)
        first = self.single.get(customer)
        return [] if first is None else [first]

    def evict_idle(self) -> None:
        """Drop customers whose newest event left the horizon; call when the watermark reaches `next_eviction`.

        New customers wait in `unfiled` until this files them. A bucket comes due
        once all of its time is older than the limit; its customers still
        active are filed again, under their newest event. Each held customer
        is in `unfiled` or in exactly one bucket.
        """
        self.next_eviction = self.watermark + EVICT_EVERY_MS  # at most once per EVICT_EVERY_MS of event time
        limit = self.watermark - self.keep_ms
        due_before = limit // EVICT_EVERY_MS
        seconds, due, customers, single = self._seconds, self._due, self.customers, self.single
        refile, self.unfiled = self.unfiled, []
        while seconds and seconds[0] < due_before:
            refile.extend(due.pop(heapq.heappop(seconds)))
        for customer in refile:
            first = single.get(customer)
            if first is not None:
                newest = first[0]
                if newest < limit:
                    del single[customer]
                    continue
            else:
                newest = customers[customer].events[-1][0]
                if newest < limit:
                    del customers[customer]
                    continue
            second = newest // EVICT_EVERY_MS  # >= due_before: not due yet (`_file`, inlined)
            filed = due.get(second)
            if filed is None:
                due[second] = [customer]
                heapq.heappush(seconds, second)
            else:
                filed.append(customer)
        self.room = self.max_customers - len(customers) - len(single)

    def _file(self, customer: str, bucket: int) -> None:
        filed = self._due.get(bucket)
        if filed is None:
            self._due[bucket] = [customer]
            heapq.heappush(self._seconds, bucket)
        else:
            filed.append(customer)

    def _newest(self, customer: str) -> int:
        first = self.single.get(customer)
        return first[0] if first is not None else self.customers[customer].events[-1][0]

    def shed_one(self) -> None:
        """Drop the least recently active customer: more than `max_customers` are held.

        Least recent by bucket (minute of event time), first filed first within
        one: the new customers are filed first; then, from the oldest bucket,
        a customer active since it was filed is filed again under its newest
        event, and the first that was not is dropped (counted in `shed`).
        Amortised O(1), like `evict_idle`.
        """
        for customer in self.unfiled:
            self._file(customer, self._newest(customer) // EVICT_EVERY_MS)
        self.unfiled = []
        seconds, due = self._seconds, self._due
        while seconds:
            bucket = seconds[0]
            filed = due[bucket]
            if isinstance(filed, list):  # first filed first: popleft, O(1)
                filed = due[bucket] = deque(filed)
            customer = filed.popleft()
            if not filed:
                heapq.heappop(seconds)
                del due[bucket]
            newest = self._newest(customer) // EVICT_EVERY_MS
            if newest > bucket:
                self._file(customer, newest)
                continue
            if self.single.pop(customer, None) is None:
                del self.customers[customer]
            self.shed += 1
            break
        self.room = self.max_customers - len(self.customers) - len(self.single)

    def size(self, horizon_ms: int | None = None, where: Callable[[E], bool] | None = None) -> tuple[int, int]:
        """(customers with state, events kept); O(customers), for tests and monitoring.

        With `horizon_ms`, only the part a rule of that window reads: events
        within horizon_ms + lateness_ms of their customer's newest, of
        customers whose newest is within that of the watermark, and (with
        `where`) only entries for which `where` holds.
        """
        windows = [*(recent.events for recent in self.customers.values()), *((e,) for e in self.single.values())]
        if horizon_ms is None:
            return len(windows), sum(map(len, windows))
        customers = events = 0
        keep = horizon_ms + self.lateness_ms
        for kept in windows:
            newest = kept[-1][0]
            if newest < self.watermark - keep:
                continue
            n = sum(1 for e in kept if e[0] > newest - keep and (where is None or where(e)))
            if n:
                customers += 1
                events += n
        return customers, events
