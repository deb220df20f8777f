"""Merchants: the top five by transactions and by value, and one merchant's view."""

import streamlit as st

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
    widgets.headlines(c, ("transactions", "total", "approval", "invalid"))
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
