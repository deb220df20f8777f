"""Commissions: per minute by commission type, the ratio by category, top merchants per 5-minute window, a what-if."""

import streamlit as st

from dashboard.ui import format as fmt
from dashboard.ui import shell, widgets
from dashboard.ui import source as live
from dashboard.ui.charts import insights as charts_insights
from dashboard.views import commissions, history
from dashboard.views.filters import Filters

COLUMNS = ["amount", "commission_amount", "commission_type", "merchant_id", "merchant_category", "error_mask"]
WINDOWS = 12  # latest 5-minute windows in the top-merchants table
TOP = 3
TABLE_COLUMNS = {
    **widgets.TABLE_COLUMNS,
    "window": st.column_config.DatetimeColumn("window from (UTC)", format="YYYY-MM-DD HH:mm"),
    "commission": st.column_config.NumberColumn("commission", format=widgets.IRR_FORMAT),
    "commission_led": st.column_config.NumberColumn("commission in them", format=widgets.IRR_FORMAT),
    "share": st.column_config.NumberColumn("share", format="percent"),
    "windows_led": st.column_config.NumberColumn("windows led", format="%,d"),
    "commission_type": st.column_config.TextColumn("actual type"),
    "actual": st.column_config.NumberColumn("actual", format=widgets.IRR_FORMAT),
    **{name: st.column_config.NumberColumn(name, format=widgets.IRR_FORMAT) for name in commissions.SCHEMES},
}

ctx = shell.context()


@shell.live_page("Commissions")
def body(sel: shell.Selection) -> None:
    """Everything below the title; refreshed in place."""
    frame = sel.frame(COLUMNS)
    snap = live.rollups(ctx.source)
    ratio = commissions.ratio_by_category(frame)
    commission, amount = float(ratio["commission"].sum()), float(ratio["amount"].sum())
    cols = st.columns(3)
    with cols[0]:
        widgets.metric(
            "Commission (IRR)",
            fmt.format_compact(commission),
            help=f"{commission:,.0f} IRR. Valid transactions only.",
        )
    with cols[1]:
        widgets.metric(
            "Commission ratio",
            f"{commission / amount:.2%}" if amount else "—",
            help="Commission / amount, valid transactions only.",
        )
    with cols[2]:
        per = commission / max(int(ratio["transactions"].sum()), 1)
        widgets.metric("Per transaction (IRR)", f"{per:,.0f}")

    past = history.select(snap, ctx.filters, sel.now_ms)
    if len(past.frame):
        widgets.chart(charts_insights.commission_chart(commissions.per_minute_by_type(past)))
    else:
        st.info("No rolled-up transaction matches the filters in this window.")
    kiosk = ctx.display.kiosk
    if not kiosk:
        st.caption(history.describe(snap, ctx.settings.rollup_days))
    if (note := history.caption(past, "the commission chart when merchants are selected")) is not None:
        st.caption(note)

    by_merchant = history.select(snap, ctx.filters, sel.now_ms, merchants=True)
    windows = commissions.merchant_windows(by_merchant)
    left, right = st.columns(2)
    with left:
        st.subheader("Commission ratio by merchant category")
        highest = float(ratio["ratio"].max()) * 100 if len(ratio) else 0.0
        bar = st.column_config.ProgressColumn(
            "commission / amount", format="%.3f %%", min_value=0.0, max_value=highest if highest > 0 else 1.0
        )
        st.dataframe(
            ratio.assign(ratio=ratio["ratio"] * 100),  # in percent, for the bar's label
            hide_index=True,
            column_order=["merchant_category", "ratio", "commission", "transactions", "amount"],
            column_config={**TABLE_COLUMNS, "ratio": bar},
        )
        st.caption("Over the buffered transactions selected above whose amounts are known.")
        if not kiosk:
            st.subheader("Most windows led")
            st.dataframe(commissions.window_leaders(windows), hide_index=True, column_config=TABLE_COLUMNS)
    with right:
        st.subheader("Top merchants per 5-minute window")
        leaders = commissions.top_by_window(windows, TOP, WINDOWS)
        st.dataframe(leaders, hide_index=True, column_config=TABLE_COLUMNS, height=shell.table_height(ctx.display, 390))
        st.caption(f"The latest {WINDOWS} windows (event time) with commission, top {TOP} of each, from the rollups.")
    if (note := history.caption(by_merchant, "the merchant tables")) is not None:
        st.caption(note)
    if kiosk:  # the what-if is a question for a desk, not the wall
        return

    st.subheader("What if every transaction paid under one scheme")
    everyone = history.select(snap, Filters(), sel.now_ms, merchants=True)
    table = commissions.what_if(frame, commissions.monthly_volume(everyone))
    left, right = st.columns([2, 3])
    with left:
        widgets.chart(charts_insights.what_if_chart(commissions.what_if_long(table)))
    with right:
        for name in commissions.SCHEMES:
            st.caption(f"**{name}**: {commissions.SCHEME_TEXT[name]}.")
        st.caption(
            "Monthly volume is each merchant's amount in the rollups, projected to 30 days. Each scheme is "
            "applied to the same selected transactions (known amounts); rows split them by their actual type."
        )
    st.dataframe(table, hide_index=True, column_config=TABLE_COLUMNS)
