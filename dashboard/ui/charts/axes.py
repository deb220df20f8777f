"""The one time axis of every chart: ticks on whole time units and a label format fine enough for them.

Vega picks tick times by itself, and a fixed "%H:%M" format labels ticks
10 s apart "00:30 00:30 00:30". Here the tick step is chosen from the span
of the data (about `MAX_TICKS` ticks at most) and the format from the step,
so two ticks never print the same label: steps under a minute show seconds,
spans of a day or more show the date.
"""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import pandas as pd

MAX_TICKS = 8
#: (unit, step, length) of the tick steps, shortest first.
STEPS: tuple[tuple[str, int, timedelta], ...] = (
    *(("second", n, timedelta(seconds=n)) for n in (1, 2, 5, 10, 15, 30)),
    *(("minute", n, timedelta(minutes=n)) for n in (1, 2, 5, 10, 15, 30)),
    *(("hour", n, timedelta(hours=n)) for n in (1, 2, 3, 6, 12)),
    *(("day", n, timedelta(days=n)) for n in (1, 2)),
    ("week", 1, timedelta(weeks=1)),
    ("month", 1, timedelta(days=31)),
)


def time_ticks(span: timedelta, max_ticks: int = MAX_TICKS) -> tuple[str, int, str]:
    """Return (unit, step, d3 time format) for an axis covering `span`, with at most about `max_ticks` ticks."""
    unit, step, length = next(((u, s, n) for u, s, n in STEPS if span / n <= max_ticks), STEPS[-1])
    if unit == "second":
        return unit, step, "%H:%M:%S"
    if unit in ("minute", "hour"):
        return unit, step, "%H:%M" if span < timedelta(days=1) - length else "%b %d %H:%M"
    return unit, step, "%b %d"


def span_of(times: pd.Series) -> timedelta:
    """The span between the first and last time of a column (zero when it has fewer than two)."""
    if len(times) < 2:
        return timedelta(0)
    span = times.max() - times.min()
    return timedelta(0) if pd.isna(span) else pd.Timedelta(span).to_pytimedelta()


def time_axis(times: pd.Series, title: str | None = None) -> alt.Axis:
    """The x axis of a chart over the datetimes `times`: whole-unit ticks with distinct labels."""
    unit, step, fmt = time_ticks(span_of(times))
    return alt.Axis(title=title, format=fmt, tickCount={"interval": unit, "step": step}, labelOverlap=True)
