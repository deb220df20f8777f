"""Where a reader that shows the newest messages starts in each partition. Pure arithmetic on watermarks."""

from __future__ import annotations

from collections.abc import Mapping


def backfill_starts(watermarks: Mapping[int, tuple[int, int]], capacity: int) -> dict[int, int]:
    """Return the start offset per partition so that at most `capacity` of the newest messages are read.

    Each partition gets a share of `capacity` proportional to its message
    count (high - low), rounded by largest remainder so the shares add up to
    exactly `capacity` when there are more messages than that.
    """
    counts = {p: max(0, high - low) for p, (low, high) in watermarks.items()}
    total = sum(counts.values())
    if total <= capacity:
        return {p: low for p, (low, _) in watermarks.items()}
    shares = {p: capacity * c // total for p, c in counts.items()}
    by_remainder = sorted(counts, key=lambda p: (-(capacity * counts[p] % total), p))
    for p in by_remainder[: capacity - sum(shares.values())]:
        shares[p] += 1
    return {p: max(low, high - shares[p]) for p, (low, high) in watermarks.items()}
