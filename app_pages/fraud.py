"""Fraud: the alert feed, alerts per rule over time, the map behind geo alerts, top customers, one customer."""

import numpy as np
import streamlit as st

from dashboard.core.schema import FRAUD_EXPLANATIONS, FRAUD_RULES
from dashboard.ui import shell, widgets
from dashboard.ui.charts import fraud as fraud_charts
from dashboard.views import fraud as fraud_view
from dashboard.views import transactions as analytics

FEED_LIMIT = 200
ALERT_COLUMNS = {
    "event_time": st.column_config.DatetimeColumn("event time", format="YYYY-MM-DD HH:mm:ss"),
    "rule": st.column_config.TextColumn("rule"),
    "customer_id": st.column_config.TextColumn("customer"),
    "evidence": st.column_config.TextColumn("evidence", width="medium"),
    "transaction_ids": st.column_config.ListColumn("transactions"),
    "last_alert": st.column_config.DatetimeColumn("last alert", format="MM-DD HH:mm:ss"),
}

ctx = shell.context()
st.title("Fraud")


def fraud() -> None:
    """Everything below the title; refreshed in place."""
    alerts = ctx.alerts()
    sel = shell.select(ctx)
    if sel is not None and sel.count < len(sel.snapshot):
        alerts = fraud_view.restrict_to_rows(alerts, sel.snapshot, sel.mask)
        st.caption("Alerts naming at least one of the filtered transactions.")
    if alerts.empty:
        st.info("No fraud alert yet. They appear here within seconds of the ingest worker raising them.")
        return
    counts = alerts["rule"].value_counts()
    cols = st.columns(1 + len(FRAUD_RULES))
    with cols[0]:
        widgets.metric("Alerts", f"{len(alerts):,}")
    for col, rule in zip(cols[1:], FRAUD_RULES, strict=True):
        with col:
            widgets.metric(rule, f"{int(counts.get(rule, 0)):,}", help=FRAUD_EXPLANATIONS[rule])

    st.subheader("Latest alerts")
    latest = alerts.tail(FEED_LIMIT).iloc[::-1]
    table = latest[["event_time", "rule", "customer_id", "transaction_ids"]].copy()
    table["rule"] = table["rule"].astype(str)
    table["evidence"] = [fraud_view.evidence_text(r) for r in latest.to_dict("records")]
    table["transaction_ids"] = [list(ids) for ids in table["transaction_ids"]]
    kiosk = ctx.display.kiosk
    st.dataframe(table, hide_index=True, column_config=ALERT_COLUMNS, height=shell.table_height(ctx.display, 300))

    left, right = st.columns(2)
    with left:
        widgets.chart(fraud_charts.alerts_chart(fraud_view.per_rule_series(alerts)))
        if not kiosk:
            st.subheader("Customers with most alerts")
            top = fraud_view.top_customers(alerts)
            st.dataframe(top, hide_index=True, column_config=ALERT_COLUMNS)
    with right:
        snapshot = ctx.source.buffer.snapshot()
        points = fraud_view.geo_points(alerts, snapshot)
        if len(points):
            widgets.chart(fraud_charts.geo_chart(points, height=250 if kiosk else 360))
        else:
            st.caption("No geographical alert with its transactions still buffered.")
    if kiosk:  # one customer is picked by hand: not on the wall
        return

    st.subheader("One customer")
    customers = top["customer_id"].tolist()
    chosen = st.selectbox("Customer", customers, key="fraud_customer") if customers else None
    if chosen is not None:
        snapshot = ctx.source.buffer.snapshot()
        rows = np.flatnonzero(fraud_view.customer_rows(snapshot, chosen))
        if len(rows):
            columns = ["ts", "kafka_ts", "merchant_id", "payment_method", "status", "amount", "lat", "lng"]
            columns.append("error_mask")
            table = analytics.feed_table(snapshot.frame(columns, rows=rows[::-1][:FEED_LIMIT]))
            st.dataframe(table, hide_index=True, column_config=widgets.TABLE_COLUMNS)
        else:
            st.caption("None of this customer's transactions is buffered any more.")


shell.run_live(fraud, ctx.display)
