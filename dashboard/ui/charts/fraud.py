"""Altair charts of the Fraud page: alerts per rule over time, and the map of geographical alerts.

Each takes a small frame from `dashboard.views.fraud`; text from messages
(customer and transaction ids) reaches the browser only as chart data.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from dashboard.core.schema import FRAUD_RULES
from dashboard.ui.charts.overtime import legend_top, over_time
from dashboard.views.fraud import CITIES

RULE_COLOURS = alt.Scale(domain=list(FRAUD_RULES), range=["#e45756", "#f58518", "#b279a2"])


def alerts_chart(series: pd.DataFrame) -> alt.Chart:
    """Stacked bars of alerts per rule over time."""
    y = alt.Y("alerts:Q", title="alerts", stack=True)
    tips = [alt.Tooltip("rule:N"), alt.Tooltip("alerts:Q")]
    return over_time(series, "Alerts per minute by rule", y, tips, color=legend_top("rule:N", RULE_COLOURS), height=220)


def geo_chart(points: pd.DataFrame, height: int = 360) -> alt.Chart:
    """Map-like scatter (longitude, latitude) of geo-alert legs joined by lines, over reference cities."""
    x = alt.X("lng:Q", title="longitude", scale=alt.Scale(domain=[44, 62]))
    y = alt.Y("lat:Q", title="latitude", scale=alt.Scale(domain=[25, 40]))
    cities = alt.Chart(CITIES).mark_text(dy=-10, color="#aaaaaa").encode(x=x, y=y, text="city:N")
    city_dots = alt.Chart(CITIES).mark_point(color="#aaaaaa", shape="square").encode(x=x, y=y)
    lines = alt.Chart(points).mark_line(color="#e45756", opacity=0.5).encode(x=x, y=y, detail="alert:N")
    dots = (
        alt.Chart(points)
        .mark_circle(size=60, color="#e45756")
        .encode(x=x, y=y, tooltip=["customer_id:N", "transaction_id:N", "lat:Q", "lng:Q"])
    )
    return (city_dots + cities + lines + dots).properties(height=height, title="Locations behind geographical alerts")
