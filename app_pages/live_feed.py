"""Live feed: the latest transactions, newest first; select one to see its full message."""

import hashlib

import streamlit as st

from dashboard.ui import shell, widgets
from dashboard.views import transactions as analytics

LIMIT = 200
COLUMNS = [
    "kafka_ts",
    "transaction_id",
    "merchant_id",
    "merchant_category",
    "payment_method",
    "status",
    "amount",
    "ts",
    "error_mask",
]
ORDER = [
    "kafka_ts",
    "merchant_id",
    "merchant_category",
    "payment_method",
    "status",
    "amount",
    "valid",
    "errors",
    "ts",
    "transaction_id",
]

ctx = shell.context()


@shell.live_page("Live feed")
def feed(sel: shell.Selection) -> None:
    """The table and the selected row's message; refreshed in place."""
    snapshot = sel.snapshot
    base = snapshot.total_appended - len(snapshot)
    # One table widget per filter set: new filters start without a selection.
    key = "feed_table_" + hashlib.sha1(repr(ctx.filters).encode()).hexdigest()[:10]
    state = st.session_state.get(key)
    chosen: list[int] = list(state["selection"]["rows"]) if state else []
    held = st.session_state.get("feed_rows")  # (key, absolute row indexes) of the table shown last
    if chosen and held is not None and held[0] == key:
        # Hold the rows the user selected from, so the selection keeps pointing at them.
        absolute = held[1]
        st.caption("Updates held while a row is selected; clear the selection to follow the stream again.")
    else:
        absolute = analytics.latest_positions(sel.mask, LIMIT) + base
        st.session_state["feed_rows"] = (key, absolute)
    positions = absolute - base
    positions = positions[positions >= 0]  # rows evicted from the buffer meanwhile
    table = analytics.feed_table(snapshot.frame(COLUMNS, rows=positions))
    st.dataframe(
        table,
        key=key,
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        column_order=ORDER,
        column_config=widgets.TABLE_COLUMNS,
        height=420,
    )
    if not chosen or chosen[0] >= len(positions):
        st.caption("Select a row to see its full message and validation result.")
        return
    position = int(positions[chosen[0]])
    payloads = analytics.raw_payloads(snapshot)
    st.subheader("Selected transaction")
    if position in payloads:
        kafka_ts = int(snapshot.numeric["kafka_ts_ms"][position])
        widgets.show_message(payloads[position], kafka_ts, ctx.settings.time_skew_ms)
    else:
        st.info("Its raw message is no longer kept (only the latest are); these are its decoded columns.")
        st.json(
            analytics.row_record(snapshot.frame(analytics.RECORD_COLUMNS, rows=positions[chosen[0] : chosen[0] + 1]))
        )
