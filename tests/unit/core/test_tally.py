"""Tally.merge: counts add field by field, dicts key by key, a subclass's own fields stay apart."""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboard.core.tally import Tally
from dashboard.ingest.worker import Stats, _OpenTxn


@dataclass
class Seen(Tally):
    messages: int = 0
    by_code: dict[str, int] = field(default_factory=dict)


@dataclass
class Timed(Seen):
    seconds: float = 0.0


def test_numbers_add_and_dicts_add_key_by_key() -> None:
    total = Seen(3, {"ERR_TIME": 1})
    total.merge(Seen(2, {"ERR_TIME": 4, "ERR_AMOUNT": 1}))
    assert total == Seen(5, {"ERR_TIME": 5, "ERR_AMOUNT": 1})


def test_only_shared_fields_merge_both_ways() -> None:
    plain = Seen(1)
    plain.merge(Timed(2, {"x": 1}, seconds=9.0))
    assert plain == Seen(3, {"x": 1})
    timed = Timed(1, seconds=4.0)
    timed.merge(Seen(2))
    assert timed == Timed(3, {}, seconds=4.0)


def test_the_workers_stats_take_a_committed_transaction() -> None:
    stats = Stats(messages=10, invalid=1, records=1, alerts=2, by_code={"ERR_TIME": 1}, transactions=3)
    txn = _OpenTxn(messages=5, invalid=2, records=3, alerts=0, by_code={"ERR_TIME": 1, "ERR_SCHEMA": 1}, started=7.0)
    txn.last[0] = 41
    stats.merge(txn)
    assert (stats.messages, stats.invalid, stats.records, stats.alerts) == (15, 3, 4, 2)
    assert stats.by_code == {"ERR_TIME": 2, "ERR_SCHEMA": 1}
    assert stats.transactions == 3  # the Stats' own counters are the worker's to keep
