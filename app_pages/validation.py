"""Validation: violations by rule over time, the invalid share, the latest invalid transactions, the rules."""

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.core.validation import check
from dashboard.ui import shell, widgets
from dashboard.ui.charts import transactions as charts
from dashboard.views import transactions as analytics

LIMIT = 100
COLUMNS = ["kafka_ts", "merchant_id", "payment_method", "status", "amount", "error_mask"]

ctx = shell.context()


def reasons(sel: shell.Selection, positions: np.ndarray) -> list[str]:
    """The violation messages of each row, from its kept raw payload ("" when not kept)."""
    payloads = analytics.raw_payloads(sel.snapshot)
    kafka_ts = sel.snapshot.numeric["kafka_ts_ms"]
    skew = ctx.settings.time_skew_ms
    return [
        "; ".join(v.message for v in check(payloads[p], int(kafka_ts[p]), skew).violations) if p in payloads else ""
        for p in positions.tolist()
    ]


@shell.live_page("Validation")
def validation(sel: shell.Selection) -> None:
    """Everything below the title; refreshed in place."""
    frame = sel.frame(["kafka_ts_ms", "error_mask"])
    window = ctx.filters.window_ms
    invalid = int(np.count_nonzero(frame["error_mask"].to_numpy()))
    share = invalid / len(frame)
    counts = analytics.error_counts(frame)
    cols = st.columns(2 + len(counts))
    with cols[0]:
        widgets.metric("Invalid transactions", f"{invalid:,}")
    with cols[1]:
        widgets.share_counter("Invalid share", share)
    for col, row in zip(cols[2:], counts.itertuples(), strict=True):
        with col:
            widgets.metric(str(row.code), f"{row.transactions:,}")

    left, right = st.columns(2)
    with left:
        errors = analytics.errors_over_time(frame, sel.now_ms, window)
        if len(errors):
            widgets.chart(charts.errors_chart(errors))
        else:
            st.success("No violation in the selection.")
    with right:
        shares = analytics.invalid_share_series(analytics.rate_series(frame, sel.now_ms, window))
        widgets.chart(charts.share_chart(shares))

    st.subheader("Latest invalid transactions")
    positions = analytics.latest_positions(sel.mask & (sel.snapshot.numeric["error_mask"] != 0), LIMIT)
    if len(positions):
        table = analytics.feed_table(sel.snapshot.frame(COLUMNS, rows=positions)).drop(columns=["valid"])
        table["reason"] = reasons(sel, positions)
        height = shell.table_height(ctx.display)
        st.dataframe(table, hide_index=True, column_config=widgets.TABLE_COLUMNS, height=height)
    else:
        st.caption("None in the selection.")
    if ctx.display.kiosk:  # the wall stops here: the rules table is reference, not news
        return

    st.subheader("Rules")
    st.dataframe(
        pd.DataFrame({"code": counts["code"], "rule": counts["rule"], "transactions": counts["transactions"]}),
        hide_index=True,
        column_config=widgets.TABLE_COLUMNS,
    )
