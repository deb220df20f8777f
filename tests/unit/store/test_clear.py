"""Clearing the stores when their topic is recreated: nothing old survives, and they fill again as new."""

from __future__ import annotations

from dashboard.store.decode import to_batch
from dashboard.store.rollups import Rollups
from tests import synthetic as syn


def test_cleared_rollups_hold_nothing_old_and_fill_again_like_new_ones() -> None:
    old, new = syn.buffer_of(syn.events(500, seed=1)).snapshot(), syn.buffer_of(syn.events(120, seed=2)).snapshot()
    clock = lambda: syn.NOW_MS / 1000  # noqa: E731
    rollups = Rollups.of_snapshot(old, clock=clock)
    before = rollups.snapshot()
    assert before.added > 400  # garbage rows have no event time: not rolled up
    rollups.clear()
    empty = rollups.snapshot()
    assert empty.empty and empty.added == 0 and empty.version > before.version
    assert rollups.records() == 0 and rollups.rows() == (0, 0) and rollups.ids() == 1  # "" only
    rollups.add_snapshot(new)
    fresh = Rollups.of_snapshot(new, clock=clock).snapshot()
    again = rollups.snapshot()
    assert again.added == fresh.added > 100
    assert again.cube.equals(fresh.cube)
    assert again.merchants.equals(fresh.merchants)


def test_a_cleared_buffer_holds_only_rows_appended_after_and_keeps_counting() -> None:
    buffer = syn.buffer_of(syn.events(300, seed=1), capacity=200)
    before = buffer.snapshot()
    buffer.clear()
    snap = buffer.snapshot()
    assert len(buffer) == len(snap) == 0 and snap.version > before.version
    assert snap.raw == () and buffer.raw_bytes() == 0
    assert all(len(values) == 1 for values in snap.dictionaries.values())  # "" only: no old string kept
    evs = syn.events(50, seed=2)
    buffer.append(to_batch([e.message for e in evs]))
    got, want = buffer.snapshot(), syn.buffer_of(evs).snapshot()
    assert buffer.total_appended == 350
    assert got.ids.tolist() == want.ids.tolist()
    assert got.dictionaries == want.dictionaries
    for name in want.codes:
        assert got.codes[name].tolist() == want.codes[name].tolist()
