"""Time bins for charts: aligned "nice" widths, at most MAX_BINS of them. Pure.

Every time series the pages draw, from buffered rows or from rollups, is cut
here, so charts never receive raw rows and all of them bin alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dashboard.core.timeunits import MINUTE_MS

MAX_BINS = 120
#: Bin widths tried in order; the first giving at most MAX_BINS bins wins.
NICE_BINS_MS = tuple(
    m * MINUTE_MS for m in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 43200, 525600)
)


def bin_width_ms(span_ms: int) -> int:
    """Return the first nice bin width that cuts `span_ms` into at most MAX_BINS bins."""
    for width in NICE_BINS_MS:
        if span_ms <= width * MAX_BINS:
            return width
    return -(-span_ms // MAX_BINS)


@dataclass(frozen=True)
class Bins:
    """Time bins: `starts` epoch ms of each bin, `width` ms, and each row's bin (-1: outside or unknown)."""

    starts: np.ndarray
    width: int
    index: np.ndarray

    @property
    def minutes(self) -> float:
        """Minutes per bin."""
        return self.width / MINUTE_MS


def cut(ts_ms: np.ndarray, start_ms: int, last_ms: int, span_ms: int, min_width_ms: int = 1) -> Bins:
    """Cut `start_ms` .. `last_ms` (both included) into aligned bins sized for `span_ms`; place each of `ts_ms`.

    The width is the nice width for `span_ms`, at least `min_width_ms`. A
    negative time (unknown) or one outside the range gets bin -1.
    """
    width = max(bin_width_ms(max(span_ms, 1)), min_width_ms)
    first, last = start_ms // width, last_ms // width
    index = ts_ms // width - first
    index[(ts_ms < 0) | (index < 0) | (index > last - first)] = -1
    return Bins(np.arange(first, last + 1, dtype=np.int64) * width, width, index)
