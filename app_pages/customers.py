"""Customers: transactions per customer, active customers, new versus returning, behaviour by type, the most active."""

import streamlit as st

from dashboard.core.timeunits import HOUR_MS, MINUTE_MS
from dashboard.store.rollups import ROLLUP_DAYS
from dashboard.ui import shell, widgets
from dashboard.ui import source as live
from dashboard.ui.charts import insights as charts_insights
from dashboard.views import customers

COLUMNS = ["ts_ms", "customer_id", "customer_type", "payment_method", "status", "amount"]
MAX_HOURS = ROLLUP_DAYS * 24  # hourly bars at most
TOP = 10
TABLE_COLUMNS = {
    **widgets.TABLE_COLUMNS,
    "customer_id": st.column_config.TextColumn("customer"),
    "customer_type": st.column_config.TextColumn("type"),
    "customers": st.column_config.NumberColumn("customers", format="%,d"),
    "per_customer": st.column_config.NumberColumn("per customer", format="%.2f"),
    "approval_rate": st.column_config.NumberColumn("approval rate", format="percent"),
    "preferred_method": st.column_config.TextColumn("preferred method"),
    "first_seen": st.column_config.DatetimeColumn("first seen (UTC)", format="YYYY-MM-DD HH:mm"),
}

ctx = shell.context()


@shell.live_page("Customers")
def body(sel: shell.Selection) -> None:
    """Everything below the title; refreshed in place."""
    frame = sel.frame(COLUMNS)
    now = sel.now_ms
    first = customers.first_seen_ms(live.rollups(ctx.source).first_seen, sel.snapshot)
    present, counts = customers.transactions_per_customer(frame)
    active, new = customers.recent(frame, first, now - HOUR_MS, now)
    cols = st.columns(4)
    with cols[0]:
        widgets.metric("Customers", f"{len(present):,}", help="Distinct customers among the selected transactions.")
    with cols[1]:
        widgets.metric("Transactions per customer", f"{counts.mean():,.2f}" if len(counts) else "—")
    with cols[2]:
        widgets.metric(
            "Active, last 60 min", f"{active:,}", help="Distinct customers in the last 60 minutes (event time)."
        )
    with cols[3]:
        widgets.metric("New, last 60 min", f"{new:,}", help="Of those, first seen in these 60 minutes.")

    kiosk = ctx.display.kiosk
    per_minute = customers.active(frame, now - 59 * MINUTE_MS, now, MINUTE_MS)
    start = ctx.filters.window_start_ms(now)
    if start is None:  # everything buffered: from the oldest event time (a bad one cannot stretch it beyond)
        ts = frame["ts_ms"].to_numpy()
        start = int(ts[ts >= 0].min()) if (ts >= 0).any() else now
    start = max(start, now - MAX_HOURS * HOUR_MS)
    hourly = customers.new_and_returning(frame, first, start, now, HOUR_MS)
    charts = [
        charts_insights.histogram_chart(customers.histogram(frame)),
        charts_insights.active_chart(per_minute, "Active customers per minute, last hour"),
        charts_insights.new_returning_chart(hourly),
    ]
    # The wall has one row of three charts; a desk has two, then the wide hourly one.
    for col, chart in zip(st.columns(3 if kiosk else 2), charts[: 3 if kiosk else 2], strict=True):
        with col:
            widgets.chart(chart)
    if not kiosk:
        widgets.chart(charts[2])
        st.caption(
            "By event time. A customer is new in the hour they were first seen among the buffered transactions "
            "(whatever the filters) and returning in every later hour; the per-minute aggregates keep no customers, "
            "so memory stays independent of how many there are."
        )

    st.subheader("By customer type")
    st.dataframe(customers.by_type(frame), hide_index=True, column_config=TABLE_COLUMNS)
    st.subheader(f"The {TOP} most active customers")
    height = shell.table_height(ctx.display)
    top = customers.top_customers(frame, first, TOP)
    st.dataframe(top, hide_index=True, column_config=TABLE_COLUMNS, height=height)
