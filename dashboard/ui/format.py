"""Numbers as the pages print them: compact amounts, shares. Pure."""

from __future__ import annotations

import math


def format_compact(value: float | None) -> str:
    """Format a large number briefly: 950, 12,345, 4.95 M, 1.23 B ("—" when unknown)."""
    if value is None or not math.isfinite(value):
        return "—"
    for scale, suffix in ((1e12, " T"), (1e9, " B"), (1e6, " M")):
        if abs(value) >= scale:
            return f"{value / scale:,.2f}{suffix}"
    return f"{round(value):,}"


def format_share(value: float | None) -> str:
    """Format a ratio as a percentage with one decimal ("—" when undefined)."""
    return "—" if value is None else f"{value:.1%}"
