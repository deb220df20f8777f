"""Where a reader showing the newest messages starts: backfill shares of a capacity."""

from __future__ import annotations

from dashboard.kafka.offsets import backfill_starts


def test_backfill_shares_are_proportional_and_fill_the_capacity_exactly() -> None:
    marks = {0: (0, 500), 1: (10, 311), 2: (5, 104)}  # 500, 301, 99 messages
    assert backfill_starts(marks, 200) == {0: 389, 1: 311 - 67, 2: 104 - 22}  # 111 + 67 + 22
    assert backfill_starts(marks, 900) == {0: 0, 1: 10, 2: 5}  # everything fits
    assert backfill_starts({0: (0, 1000), 1: (0, 0)}, 10) == {0: 990, 1: 0}
    assert backfill_starts({}, 10) == {}
