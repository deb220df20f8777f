"""Small Streamlit widgets the pages share: counters with a level, bar columns, table formats, one message.

Message content is rendered only through st.dataframe, st.json and st.code,
never through markdown or HTML.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import altair as alt
import pandas as pd
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

from dashboard.ui.format import format_compact, format_share
from dashboard.views.message import message_view
from dashboard.views.transactions import APPROVAL_LEVELS, INVALID_LEVELS, Counters, Level, level

LEVEL_COLOUR: dict[str, Literal["green", "orange", "red", "gray"]] = {
    "green": "green",
    "amber": "orange",
    "red": "red",
    "gray": "gray",
}
LEVEL_TEXT = {"green": "ok", "amber": "watch", "red": "alert", "gray": "n/a"}
IRR_FORMAT = "%,d IRR"
#: Column formats of the tables the pages show (columns absent from a table are ignored).
TABLE_COLUMNS = {
    "count": st.column_config.NumberColumn("count", format="%,d"),
    "transactions": st.column_config.NumberColumn("transactions", format="%,d"),
    "share": st.column_config.ProgressColumn("share", format="percent", min_value=0.0, max_value=1.0),
    "average_amount": st.column_config.NumberColumn("average amount", format=IRR_FORMAT),
    "total_amount": st.column_config.NumberColumn("total amount", format=IRR_FORMAT),
    "amount": st.column_config.NumberColumn("amount", format=IRR_FORMAT),
    "kafka_ts": st.column_config.DatetimeColumn("received (Kafka)", format="YYYY-MM-DD HH:mm:ss"),
    "ts": st.column_config.DatetimeColumn("event time", format="YYYY-MM-DD HH:mm:ss"),
    "valid": st.column_config.CheckboxColumn("valid"),
    "merchant_id": st.column_config.TextColumn("merchant"),
    "merchant_category": st.column_config.TextColumn("category"),
    "payment_method": st.column_config.TextColumn("method"),
    "errors": st.column_config.TextColumn("errors", width=180),
    # A fixed width for the widest text, so a wide table keeps its last column in view at 1600 px.
    "transaction_id": st.column_config.TextColumn("transaction", width="medium"),
}
#: Narrow formats for the three breakdown tables side by side on the Overview.
BREAKDOWN_COLUMNS = {
    **TABLE_COLUMNS,
    "share": st.column_config.NumberColumn("share", format="percent"),
    "average_amount": st.column_config.NumberColumn("avg IRR", format="compact"),
    "total_amount": st.column_config.NumberColumn("total IRR", format="compact"),
}


def bar_column(label: str, maximum: float, format: str) -> ColumnConfig:
    """Column config showing a number as a bar scaled to `maximum` (a cheap in-table chart)."""
    return st.column_config.ProgressColumn(label, format=format, min_value=0, max_value=max(float(maximum), 1.0))


def metric(label: str, value: str, level: Level | None = None, help: str | None = None) -> None:
    """Show a counter; with a level, a coloured ok/watch/alert tag under it."""
    if level is None:  # a figure without thresholds
        st.metric(label, value, help=help)
    else:
        st.metric(label, value, delta=LEVEL_TEXT[level], delta_color=LEVEL_COLOUR[level], delta_arrow="off", help=help)


def show_message(value: bytes | None, kafka_ts_ms: int, skew_ms: int) -> None:
    """Show one message as JSON (as escaped text when it cannot be shown as JSON) and its judgement, as data only."""
    view = message_view(value, kafka_ts_ms, skew_ms)
    if view.json is not None:
        st.json(view.json, expanded=True)
    else:  # not JSON, a bare scalar, too large or deep, or numbers a browser would round
        st.code(view.text, language=None, wrap_lines=True)
    if view.valid:
        st.success("Valid: passes every rule.")
        return
    st.error("Invalid: " + ", ".join(view.codes))  # codes are our constants, not message content
    st.dataframe(pd.DataFrame(view.rows), hide_index=True)


#: Counters of a share with a traffic-light level: thresholds (green, amber) and help text.
SHARE_COUNTERS: dict[str, tuple[tuple[float, float], str]] = {
    "Approval rate": (APPROVAL_LEVELS, "Approved among transactions with a status; ok from 90 %, alert below 80 %."),
    "Invalid share": (INVALID_LEVELS, "Transactions breaking a rule; ok up to 2 %, alert above 5 %."),
}


def share_counter(label: str, value: float | None) -> None:
    """Show one of SHARE_COUNTERS: the share as a percentage, its level and its help."""
    levels, help = SHARE_COUNTERS[label]
    metric(label, format_share(value), level(value, *levels), help=help)


Headline = Literal["transactions", "per_minute", "total", "average", "approval", "invalid"]
#: How each headline counter of `views.transactions.Counters` is shown: label, value, level and help.
HEADLINES: dict[Headline, Callable[[Counters], None]] = {
    "transactions": lambda c: metric("Transactions", f"{c.transactions:,}"),
    "per_minute": lambda c: metric(
        "Per minute", f"{c.per_minute:,.1f}", help="Transactions in the window per minute covered."
    ),
    "total": lambda c: metric(
        "Total (IRR)",
        format_compact(c.total_amount),
        help=f"{c.total_amount:,.0f} IRR. Valid transactions only (an invalid one's amount is not trusted).",
    ),
    "average": lambda c: metric(
        "Average (IRR)",
        "—" if c.average_amount is None else f"{c.average_amount:,.0f}",
        help="Average amount of the valid transactions.",
    ),
    "approval": lambda c: share_counter("Approval rate", c.approval_rate),
    "invalid": lambda c: share_counter("Invalid share", c.invalid_share),
}


def headlines(counters: Counters, shown: Sequence[Headline]) -> None:
    """Show the `shown` headline counters of `counters` side by side, one column each, in that order."""
    for column, name in zip(st.columns(len(shown)), shown, strict=True):
        with column:
            HEADLINES[name](counters)


#: Check every chart's Vega-Lite spec against the schema on each render (the test suite sets it).
CHECK_CHART_SPECS = os.environ.get("DAROOGHE_CHECK_CHART_SPECS") == "1"


class _UncheckedChart(alt.Chart):
    """An Altair chart whose spec is not validated against the Vega-Lite schema when rendered."""

    def to_dict(self, validate: bool = False, **kwargs: Any) -> dict[str, Any]:
        return super().to_dict(validate=validate, **kwargs)


class _UncheckedLayer(alt.LayerChart):
    """A layered chart whose spec is not validated against the Vega-Lite schema when rendered."""

    def to_dict(self, validate: bool = False, **kwargs: Any) -> dict[str, Any]:
        return super().to_dict(validate=validate, **kwargs)


_UNCHECKED: dict[type, type] = {alt.Chart: _UncheckedChart, alt.LayerChart: _UncheckedLayer}


def unchecked(spec: alt.Chart | alt.LayerChart) -> alt.Chart | alt.LayerChart:
    """Return a copy of `spec` whose Vega-Lite spec is not validated against the schema when rendered."""
    cls = _UNCHECKED.get(type(spec))
    if cls is None:  # a kind of chart we do not use: rendered as it is, validated
        return spec
    out = spec.copy(deep=False)
    # The same object layout; only to_dict's default differs. (Altair's own __setattr__
    # stores attributes as chart properties, hence object's.)
    object.__setattr__(out, "__class__", cls)
    return out


def chart(spec: alt.Chart | alt.LayerChart) -> None:
    """Show an Altair chart across the container's width.

    Streamlit turns the chart into its Vega-Lite spec on every run, and
    Altair's schema validation was about two thirds of that (5-10 ms a chart).
    Our charts are fixed in code and the tests render every page with
    DAROOGHE_CHECK_CHART_SPECS=1, which validates each spec; the server skips it.
    """
    st.altair_chart(spec if CHECK_CHART_SPECS else unchecked(spec), width="stretch")
