"""The one time axis of every chart: ticks on whole time units and a label format fine enough for them.

Vega picks tick times by itself, and a fixed "%H:%M" format labels ticks
10 s apart "00:30 00:30 00:30". Here the tick step is chosen from the span
of the data (about `MAX_TICKS` ticks at most), the ticks are placed on whole
multiples of it and passed as the axis's values, and the format is chosen
from the step, so two ticks never print the same label: steps under a
minute show seconds, spans of a day or more show the date. (Vega's own
`tickCount: {interval, step}` would do the placing, but this Vega build
knows only plural unit names such as "minutes", which Vega-Lite's schema
rejects.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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


_WEEK_ORIGIN = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday: weeks start on Mondays


def tick_values(start: datetime, end: datetime, unit: str, step: int) -> list[datetime]:
    """The whole multiples of (`unit`, `step`) from `start` to `end` (UTC; months on their first day)."""
    if end < start:
        return []
    if unit == "month":
        first = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        out = []
        while first <= end:
            if first >= start:
                out.append(first)
            first = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
        return out
    length = next(n for u, s, n in STEPS if (u, s) == (unit, step))
    offset = (start - _WEEK_ORIGIN) % length
    first = start if not offset else start + (length - offset)
    count = int((end - first) / length) + 1 if first <= end else 0
    return [first + i * length for i in range(count)]


def time_axis(times: pd.Series, title: str | None = None) -> alt.Axis:
    """The x axis of a chart over the datetimes `times`: ticks on whole units, labels that differ."""
    unit, step, fmt = time_ticks(span_of(times))
    valid = times.dropna()
    if valid.empty:
        return alt.Axis(title=title, format=fmt, labelOverlap=True)
    start = pd.Timestamp(valid.min()).tz_convert(UTC) if valid.dt.tz else pd.Timestamp(valid.min(), tz=UTC)
    end = pd.Timestamp(valid.max()).tz_convert(UTC) if valid.dt.tz else pd.Timestamp(valid.max(), tz=UTC)
    ticks = tick_values(start.to_pydatetime(), end.to_pydatetime(), unit, step)
    # ISO strings: Vega-Lite turns them into dates; plain epoch numbers draw no tick on a time axis.
    return alt.Axis(title=title, format=fmt, values=[t.isoformat() for t in ticks], labelOverlap=True)
