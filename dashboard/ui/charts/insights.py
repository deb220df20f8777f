"""Altair chart builders of the Commissions, Customers and Volume pages: typed pure functions.

Each takes the small, already aggregated output of `dashboard.views.commissions`,
`dashboard.views.customers` or `dashboard.views.volume` (at most a few hundred rows) and
returns an `alt.Chart`; none touches raw rows or Streamlit. Text from
messages (merchant and customer ids) reaches the browser only as chart data.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboard.core.schema import COMMISSION_TYPES
from dashboard.ui.charts.overtime import legend_top, over_time
from dashboard.ui.charts.transactions import IRR
from dashboard.views.transactions import MISSING
from dashboard.views.volume import WEEKDAYS

TYPE_DOMAIN = [*COMMISSION_TYPES, MISSING]
TYPE_COLOURS = alt.Scale(domain=TYPE_DOMAIN, range=["#4c78a8", "#f58518", "#54a24b", "#9d9d9d"])
SCHEME_COLOURS = alt.Scale(domain=["actual", *COMMISSION_TYPES], range=["#9ca3af", "#4c78a8", "#f58518", "#54a24b"])
KIND_COLOURS = alt.Scale(domain=["new", "returning"], range=["#e45756", "#4c78a8"])
PEAK_COLOURS = alt.Scale(domain=[False, True], range=["#4c78a8", "#e45756"])
BAR = "#4c78a8"


def _present(values: pd.Series) -> list[str]:
    """The commission types among `values`, in the colour scale's order (the legend shows only these)."""
    seen = set(values)
    return [v for v in TYPE_DOMAIN if v in seen]


def commission_chart(series: pd.DataFrame) -> alt.Chart:
    """Stacked bars of commission per minute by commission type (from `commissions.per_minute_by_type`)."""
    tips = [
        alt.Tooltip("commission_type:N", title="type"),
        alt.Tooltip("commission:Q", format=IRR, title="commission (IRR)"),
        alt.Tooltip("per_minute:Q", format=IRR, title="per minute (IRR)"),
    ]
    colour = legend_top("commission_type:N", TYPE_COLOURS, _present(series["commission_type"]))
    y = alt.Y("per_minute:Q", stack="zero", title="IRR per minute")
    return over_time(series, "Commission per minute by commission type", y, tips, color=colour)


def what_if_chart(long: pd.DataFrame) -> alt.Chart:
    """Columns of the actual commission and each scheme's (from `commissions.what_if_long`)."""
    return (
        alt.Chart(long, title="Commission under each scheme")
        .mark_bar()
        .encode(
            x=alt.X("scheme:N", sort=None, title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("commission:Q", title="IRR", axis=alt.Axis(format="~s")),
            color=alt.Color("scheme:N", scale=SCHEME_COLOURS, legend=None),
            tooltip=[
                alt.Tooltip("scheme:N"),
                alt.Tooltip("commission:Q", format=IRR, title="commission (IRR)"),
                alt.Tooltip("ratio:Q", format=".3%", title="of the amount"),
            ],
        )
        .properties(height=260)
    )


def histogram_chart(table: pd.DataFrame) -> alt.Chart:
    """Bars of customers by their number of transactions (from `customers.histogram`)."""
    ranges = [str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in zip(table["low"], table["high"], strict=True)]
    return (
        alt.Chart(table.assign(transactions=ranges), title="Transactions per customer")
        .mark_bar(color=BAR)
        .encode(
            x=alt.X("transactions:O", sort=None, title="transactions", axis=alt.Axis(labelAngle=0)),
            y=alt.Y("customers:Q", title="customers"),
            tooltip=[alt.Tooltip("transactions:O"), alt.Tooltip("customers:Q", format=",")],
        )
        .properties(height=240)
    )


def active_chart(series: pd.DataFrame, title: str) -> alt.Chart:
    """Bars of distinct customers per bin (from `customers.active`)."""
    customers = alt.Y("customers:Q", title="customers")
    return over_time(series, title, customers, [alt.Tooltip("customers:Q")], height=240, style={"color": BAR})


def new_returning_chart(series: pd.DataFrame) -> alt.Chart:
    """Stacked bars of active customers per hour, new and returning (from `customers.new_and_returning`)."""
    y = alt.Y("customers:Q", stack="zero", title="customers")
    tips = [alt.Tooltip("kind:N"), alt.Tooltip("customers:Q", format=",")]
    title = "Active customers per hour: new and returning"
    colour = legend_top("kind:N", KIND_COLOURS)
    return over_time(series, title, y, tips, color=colour, stack_order="kind:N", bin_title="hour from")


def peaks_chart(series: pd.DataFrame, title: str, time_format: str) -> alt.Chart:
    """Bars of transactions per bin, the peaks in red (from `volume.live` or `volume.hourly`).

    One layer only: a second layer of labels would double the render cost.
    """
    tips = [alt.Tooltip("count:Q", format=","), alt.Tooltip("peak:N")]
    colour = alt.Color("peak:N", scale=PEAK_COLOURS, legend=None)
    y = alt.Y("count:Q", title="transactions")
    return over_time(series, title, y, tips, color=colour, height=240, bin_format=time_format)


def heatmap_chart(table: pd.DataFrame) -> alt.Chart:
    """Weekday x hour heatmap of the average transactions per hour (from `volume.heatmap`)."""
    return (
        alt.Chart(table, title="Average transactions per hour, by weekday and hour (Tehran time)")
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title="hour of day (Tehran, UTC+03:30)"),
            y=alt.Y("weekday:O", sort=list(WEEKDAYS), title=None, axis=alt.Axis(labelOverlap=False)),
            color=alt.Color("average:Q", title="per hour", scale=alt.Scale(scheme="blues")),
            tooltip=[
                alt.Tooltip("weekday:O"),
                alt.Tooltip("hour:O"),
                alt.Tooltip("average:Q", format=",.1f", title="average per hour"),
                alt.Tooltip("count:Q", format=",", title="transactions"),
                alt.Tooltip("hours:Q", title="hours seen"),
            ],
        )
        .properties(height=alt.Step(28))  # a band per weekday: a fixed height is not kept for bands
    )
