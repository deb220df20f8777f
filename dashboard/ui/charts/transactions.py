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
from dashboard.ui.charts.overtime import legend_top, over_time

VALID_COLOURS = alt.Scale(domain=["valid", "invalid"], range=["#2e9e6a", "#e5484d"])
CODE_COLOURS = alt.Scale(domain=list(ERROR_CODES), range=["#f5a524", "#e5484d", "#8e6cf0", "#7f8c8d"])
IRR = ",.0f"
RED = "#e5484d"


def rate_chart(series: pd.DataFrame, title: str = "Transactions per minute") -> alt.Chart:
    """Stacked bars of transactions per minute, valid and invalid (from `rate_series`)."""
    y = alt.Y("per_minute:Q", stack="zero", title="per minute")
    per_minute = alt.Tooltip("per_minute:Q", format=",.1f", title="per minute")
    tips = [alt.Tooltip("validity:N"), alt.Tooltip("count:Q", format=","), per_minute]
    return over_time(series, title, y, tips, color=legend_top("validity:N", VALID_COLOURS), stack_order="validity:N")


def errors_chart(series: pd.DataFrame) -> alt.Chart:
    """Stacked bars of violations per bin and error code (from `errors_over_time`)."""
    y = alt.Y("count:Q", stack="zero", title="violations")
    tips = [alt.Tooltip("code:N"), alt.Tooltip("count:Q", format=",")]
    return over_time(series, "Violations by rule", y, tips, color=legend_top("code:N", CODE_COLOURS))


def share_chart(series: pd.DataFrame) -> alt.Chart:
    """Line of the invalid share per bin (from `invalid_share_series`)."""
    y = alt.Y("invalid_share:Q", axis=alt.Axis(format="%"), title=None)
    tips = [alt.Tooltip("invalid_share:Q", format=".1%", title="invalid")]
    return over_time(series, "Invalid share", y, tips, height=200, mark="line", style={"point": True, "color": RED})
