"""The one shape of every chart over time: bars (or a line) of a frame's "time" bins on the shared time axis.

A chart module states only what differs (title, y, colour, tooltips, height);
the x encoding and the tooltip naming the bin's start are written here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import altair as alt
import pandas as pd

from dashboard.ui.charts.axes import time_axis

BIN_FORMAT = "%Y-%m-%d %H:%M"  # the tooltip's "from": minutes and hours are the bins


def legend_top(field: str, scale: alt.Scale, values: Sequence[str] | None = None) -> alt.Color:
    """A colour encoding of `field` on `scale`, its untitled legend on top (listing only `values`, when given)."""
    listed = alt.Undefined if values is None else list(values)
    return alt.Color(field, scale=scale, legend=alt.Legend(title=None, orient="top", values=listed))


def over_time(
    series: pd.DataFrame,
    title: str,
    y: alt.Y,
    tooltip: Sequence[alt.Tooltip] = (),
    *,
    color: alt.Color | None = None,
    stack_order: str | None = None,
    height: int = 260,
    mark: Literal["bar", "line"] = "bar",
    style: Mapping[str, Any] | None = None,
    bin_title: str = "from",
    bin_format: str = BIN_FORMAT,
) -> alt.Chart:
    """Return a chart of `series` (a "time" column of bin starts) over the shared time axis.

    `tooltip` follows the bin's start; `stack_order` names a field whose
    values stack in descending order; `style` goes to the mark.
    """
    chart = alt.Chart(series, title=title)
    chart = chart.mark_line(**(style or {})) if mark == "line" else chart.mark_bar(**(style or {}))
    optional = {"color": color, "order": None if stack_order is None else alt.Order(stack_order, sort="descending")}
    return chart.encode(
        x=alt.X("time:T", axis=time_axis(series["time"])),
        y=y,
        tooltip=[alt.Tooltip("time:T", title=bin_title, format=bin_format), *tooltip],
        **{name: value for name, value in optional.items() if value is not None},
    ).properties(height=height)
