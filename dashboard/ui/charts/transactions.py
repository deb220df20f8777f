"""Altair chart builders: typed pure functions of small, already aggregated frames.

Each takes the output of a `dashboard.views.transactions` function (at most a few
hundred rows) and returns an `alt.Chart`; none touches raw rows or Streamlit.
Text from messages (merchant ids) reaches the browser only as chart data,
drawn by Vega as SVG text.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboard.core.schema import ERROR_CODES
from dashboard.ui.charts.axes import time_axis

VALID_COLOURS = alt.Scale(domain=["valid", "invalid"], range=["#2e9e6a", "#e5484d"])
CODE_COLOURS = alt.Scale(domain=list(ERROR_CODES), range=["#f5a524", "#e5484d", "#8e6cf0", "#7f8c8d"])
IRR = ",.0f"


def rate_chart(series: pd.DataFrame, title: str = "Transactions per minute") -> alt.Chart:
    """Stacked bars of transactions per minute, valid and invalid (from `rate_series`)."""
    return (
        alt.Chart(series, title=title)
        .mark_bar()
        .encode(
            x=alt.X("time:T", axis=time_axis(series["time"])),
            y=alt.Y("per_minute:Q", stack="zero", title="per minute"),
            color=alt.Color("validity:N", scale=VALID_COLOURS, legend=alt.Legend(title=None, orient="top")),
            order=alt.Order("validity:N", sort="descending"),
            tooltip=[
                alt.Tooltip("time:T", title="from", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("validity:N"),
                alt.Tooltip("count:Q", format=","),
                alt.Tooltip("per_minute:Q", format=",.1f", title="per minute"),
            ],
        )
        .properties(height=260)
    )


def errors_chart(series: pd.DataFrame) -> alt.Chart:
    """Stacked bars of violations per bin and error code (from `errors_over_time`)."""
    return (
        alt.Chart(series, title="Violations by rule")
        .mark_bar()
        .encode(
            x=alt.X("time:T", axis=time_axis(series["time"])),
            y=alt.Y("count:Q", stack="zero", title="violations"),
            color=alt.Color("code:N", scale=CODE_COLOURS, legend=alt.Legend(title=None, orient="top")),
            tooltip=[
                alt.Tooltip("time:T", title="from", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("code:N"),
                alt.Tooltip("count:Q", format=","),
            ],
        )
        .properties(height=260)
    )


def share_chart(series: pd.DataFrame) -> alt.Chart:
    """Line of the invalid share per bin (from `invalid_share_series`)."""
    return (
        alt.Chart(series, title="Invalid share")
        .mark_line(point=True, color="#e5484d")
        .encode(
            x=alt.X("time:T", axis=time_axis(series["time"])),
            y=alt.Y("invalid_share:Q", axis=alt.Axis(format="%"), title=None),
            tooltip=[
                alt.Tooltip("time:T", title="from", format="%Y-%m-%d %H:%M"),
                alt.Tooltip("invalid_share:Q", format=".1%", title="invalid"),
            ],
        )
        .properties(height=200)
    )
