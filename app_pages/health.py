"""Health: the feed's figures with red/amber/green states, and the last broker error."""

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard.ui import auth, shell, widgets
from dashboard.ui import source as live
from dashboard.views import health

PER_ROW = 3

ctx = shell.context()
st.title("Health")


def panel() -> None:
    """The feed's figures; refreshed in place."""
    report = ctx.source.health()
    notice = health.banner(report, ctx.settings.stale_seconds, ctx.settings.bootstrap_servers)
    if notice is not None:
        getattr(st, notice.kind)(notice.text)
    if report is None:
        st.info("This source reports no feed health (a fixed buffer).")
    buffer = ctx.source.buffer
    figures = health.assess(report, ctx.settings.stale_seconds, len(buffer), buffer.capacity)
    for start in range(0, len(figures), PER_ROW):
        for col, figure in zip(st.columns(PER_ROW), figures[start : start + PER_ROW], strict=False):
            with col:
                widgets.metric(figure.label, figure.value, figure.level, help=figure.note or None)

    # A desk's detail: the wall's Health page fits one screen without it (the Volume page says it too).
    if not ctx.display.kiosk and (history_feed := live.history_status(ctx.source)) is not None:
        st.caption("History feed: " + history_feed)

    invalid = health.invalid_by_code(report)
    if invalid:
        st.subheader("Invalid messages received, by rule")
        table = pd.DataFrame({"code": list(invalid), "transactions": list(invalid.values())})
        st.dataframe(table, hide_index=True, column_config=widgets.TABLE_COLUMNS)

    st.subheader("Last broker error")
    error = getattr(report, "last_error", None)
    if not error:
        st.caption("None since the dashboard started.")
        return
    at = getattr(report, "last_error_at", None)
    if at is not None:
        st.caption("At " + datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    st.code(str(error), language=None, wrap_lines=True)  # broker text, shown as text


shell.run_live(panel, ctx.display)
st.subheader("Sign-in")
st.dataframe(auth.status_table(ctx.person), hide_index=True)  # who and whether; never a secret
