"""Volume: the last 15 minutes live, hourly history with peaks, weekday x hour, busiest part of the day, jumps."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from dashboard.ui import shell, widgets
from dashboard.ui import source as live
from dashboard.ui.charts import insights as charts_insights
from dashboard.views import history, volume

JUMPS_SHOWN = 50
TABLE_COLUMNS = {
    **widgets.TABLE_COLUMNS,
    "window": st.column_config.DatetimeColumn("window from (UTC)", format="YYYY-MM-DD HH:mm"),
    "usual": st.column_config.NumberColumn("usual per 5 min", format="%.1f"),
    "ratio": st.column_config.NumberColumn("x usual", format="%.1f"),
    "busiest": st.column_config.TextColumn("busiest"),
    **{
        name: st.column_config.ProgressColumn(
            f"{name} {lo:02d}-{hi:02d}", format="percent", min_value=0.0, max_value=1.0
        )
        for name, lo, hi in volume.PARTS
    },
}

LIVE_TITLE = "Last 15 minutes, per 10 seconds (busiest in red)"
HOURLY_TITLE = "Transactions per hour (each Tehran day's busiest hour in red)"

ctx = shell.context()


def _wall(recent: pd.DataFrame, past: history.History, hours: pd.DataFrame, jumps: pd.DataFrame) -> None:
    """The wall's Volume: the live and hourly charts side by side, the heatmap beside the latest jumps."""
    left, right = st.columns(2)
    with left:
        widgets.chart(charts_insights.peaks_chart(recent, LIVE_TITLE, "%H:%M:%S"))
    with right:
        if len(past.frame):
            widgets.chart(charts_insights.peaks_chart(hours, HOURLY_TITLE, "%Y-%m-%d %H:%M"))
        else:
            st.info("No rolled-up transaction matches the filters in this window.")
    left, right = st.columns(2)
    with left:
        if len(past.frame):
            widgets.chart(charts_insights.heatmap_chart(volume.heatmap(past)))
    with right:
        st.subheader("Merchant volume jumps")
        st.dataframe(
            jumps.head(JUMPS_SHOWN), hide_index=True, column_config=TABLE_COLUMNS, height=shell.KIOSK_TABLE_HEIGHT
        )


@shell.live_page("Volume")
def body(sel: shell.Selection) -> None:
    """Everything below the title; refreshed in place."""
    now = sel.now_ms
    recent = volume.live(sel.frame(["ts_ms"])["ts_ms"].to_numpy(), now)
    snap = live.rollups(ctx.source)
    past = history.select(snap, ctx.filters, now)
    hours = volume.hourly(past)
    everything = history.select(snap, replace(ctx.filters, window="all"), now, merchants=True)
    span = snap.span_minutes()
    jumps = volume.jumps(everything, past.start_minute, span[0] if span else now // 60_000)
    cols = st.columns(4)
    with cols[0]:
        widgets.metric("Last 15 minutes", f"{int(recent['count'].sum()):,}", help="Transactions by event time.")
    with cols[1]:
        widgets.metric(
            "Busiest 10 s", f"{int(recent['count'].max()):,}", help="Most transactions in one 10-second bucket."
        )
    with cols[2]:
        top = hours.loc[hours["count"].idxmax()] if len(hours) and hours["count"].max() > 0 else None
        value = "—" if top is None else f"{int(top['count']):,}"
        when = None if top is None else "Hour from " + top["time"].strftime("%Y-%m-%d %H:%M UTC")
        widgets.metric("Busiest hour", value, help=when)
    with cols[3]:
        widgets.metric("Volume jumps", f"{len(jumps):,}", help="Merchant 5-minute windows above 3x their usual volume.")

    if ctx.display.kiosk:
        _wall(recent, past, hours, jumps)
        return
    widgets.chart(charts_insights.peaks_chart(recent, LIVE_TITLE, "%H:%M:%S"))
    if not len(past.frame):
        st.info("No rolled-up transaction matches the filters in this window.")
    else:
        widgets.chart(charts_insights.peaks_chart(hours, HOURLY_TITLE, "%Y-%m-%d %H:%M"))
        widgets.chart(charts_insights.heatmap_chart(volume.heatmap(past)))
    st.caption(
        history.describe(snap, ctx.settings.rollup_days) + " Local times are Tehran's (UTC+03:30, no daylight saving)."
    )
    if (feed := live.history_status(ctx.source)) is not None:
        st.caption("History feed: " + feed)
    if (note := history.caption(past, "the history charts when merchants are selected")) is not None:
        st.caption(note)

    st.subheader("Busiest part of the day, by category")
    st.dataframe(volume.parts_of_day(past), hide_index=True, column_config=TABLE_COLUMNS)
    st.caption("Share of each category's transactions in each six-hour part of the Tehran day.")
    st.subheader("Merchant volume jumps")
    st.dataframe(jumps.head(JUMPS_SHOWN), hide_index=True, column_config=TABLE_COLUMNS)
    st.caption(
        f"5-minute windows with at least {volume.JUMP_MIN} transactions and more than {volume.JUMP_FACTOR:g}x the "
        "merchant's usual: its mean per 5-minute window over all the rolled-up history, empty windows counted. "
        f"The latest {JUMPS_SHOWN} of them."
    )
    if (note := history.caption(everything, "the merchant jumps")) is not None:
        st.caption(note)
