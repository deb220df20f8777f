"""Overview: headline counters, transactions per minute, breakdowns, the latest message."""

import streamlit as st

from dashboard.ui import shell, widgets
from dashboard.ui.charts import transactions as charts
from dashboard.views import transactions as analytics

COLUMNS = ["kafka_ts_ms", "amount", "status", "merchant_category", "payment_method", "error_mask"]
BREAKDOWNS = (
    ("status", "By status"),
    ("merchant_category", "By merchant category"),
    ("payment_method", "By payment method"),
)

ctx = shell.context()


@shell.live_page("Overview")
def overview(sel: shell.Selection) -> None:
    """Everything below the title; refreshed in place."""
    frame = sel.frame(COLUMNS)
    window = ctx.filters.window_ms
    c = analytics.counters(frame, sel.now_ms, window)
    widgets.headlines(c, ("transactions", "per_minute", "total", "average", "approval", "invalid"))
    widgets.chart(charts.rate_chart(analytics.rate_series(frame, sel.now_ms, window)))

    # Tables rather than three more Altair charts: the same figures at a
    # fraction of the render time (Altair's to_dict costs ~10 ms a chart).
    for col, (column, title) in zip(st.columns(3), BREAKDOWNS, strict=True):
        with col:
            st.subheader(title)
            st.dataframe(analytics.breakdown(frame, column), hide_index=True, column_config=widgets.BREAKDOWN_COLUMNS)

    if ctx.display.kiosk:
        return
    st.subheader("Latest message")
    position = analytics.latest_raw(sel.snapshot, sel.mask)
    if position is None:
        st.info("The raw payloads of the selected transactions are no longer kept.")
        return
    kafka_ts = int(sel.snapshot.numeric["kafka_ts_ms"][position])
    st.caption("Validated again against its own Kafka timestamp, as the ingest worker does.")
    widgets.show_message(analytics.raw_payloads(sel.snapshot)[position], kafka_ts, ctx.settings.time_skew_ms)
