"""Merchants: the top five by transactions and by value, and one merchant's view."""

import streamlit as st

from dashboard.ui import format as fmt
from dashboard.ui import shell, widgets
from dashboard.ui.charts import transactions as charts
from dashboard.views import transactions as analytics
from dashboard.views.filters import code_lookup

TOP = 5
COLUMNS = ["kafka_ts_ms", "amount", "status", "merchant_category", "payment_method", "error_mask"]

ctx = shell.context()


@shell.live_page("Merchants")
def merchants(sel: shell.Selection) -> None:
    """Everything below the title; refreshed in place."""
    snapshot = sel.snapshot
    frame = sel.frame(["merchant_id", "amount"])
    by_count, by_value = st.columns(2)
    for col, by, key, title, shown_as in (
        (by_count, "count", "count", "Top 5 by transactions", "%,d"),
        (by_value, "value", "total_amount", "Top 5 by value", widgets.IRR_FORMAT),
    ):
        top = analytics.top_merchants(frame, TOP, by=by)  # type: ignore[arg-type]
        columns = {
            **widgets.TABLE_COLUMNS,
            key: widgets.bar_column(key.replace("_", " "), top[key].max(), shown_as),
        }
        with col:
            st.subheader(title)
            st.dataframe(top, hide_index=True, column_config=columns)

    if ctx.display.kiosk:  # one merchant is picked by hand: not on the wall
        return
    st.subheader("One merchant")
    codes = snapshot.codes["merchant_id"]
    options = analytics.ranked_values(codes[sel.mask], snapshot.dictionaries["merchant_id"])
    if not options:
        st.info("No merchant in the selection.")
        return
    chosen = st.selectbox("Merchant (most active first)", options, key="merchant_focus")
    if chosen is None:
        return
    rows = sel.mask & code_lookup(snapshot.dictionaries["merchant_id"], [chosen])[codes]
    mframe = snapshot.frame(COLUMNS, rows=rows)
    c = analytics.counters(mframe, sel.now_ms, ctx.filters.window_ms)
    cols = st.columns(4)
    with cols[0]:
        widgets.metric("Transactions", f"{c.transactions:,}")
    with cols[1]:
        widgets.metric(
            "Total (IRR)",
            fmt.format_compact(c.total_amount),
            help=f"{c.total_amount:,.0f} IRR. Valid transactions only (an invalid one's amount is not trusted).",
        )
    with cols[2]:
        widgets.share_counter("Approval rate", c.approval_rate)
    with cols[3]:
        widgets.share_counter("Invalid share", c.invalid_share)
    series = analytics.rate_series(mframe, sel.now_ms, ctx.filters.window_ms)
    widgets.chart(charts.rate_chart(series, "Volume (transactions per minute)"))
    left, right = st.columns(2)
    with left:
        st.dataframe(
            analytics.breakdown(mframe, "merchant_category"), hide_index=True, column_config=widgets.TABLE_COLUMNS
        )
        st.dataframe(analytics.breakdown(mframe, "status"), hide_index=True, column_config=widgets.TABLE_COLUMNS)
    with right:
        errors = analytics.error_counts(mframe)[["code", "transactions", "share"]]
        st.dataframe(errors, hide_index=True, column_config=widgets.TABLE_COLUMNS)
