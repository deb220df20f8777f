"""The shell every page shares: settings check, sidebar filters, kiosk style, live parts, the selection.

`draw()` runs in the entrypoint on every run, before the page: Streamlit
keeps entrypoint widgets (and so the sidebar filters) across page switches.
The URL query is the source of truth at a session's start; afterwards the
widgets are, and every change is written back to the URL. The browser drops
the query string on a page switch, so the next run writes it again.

Message content is rendered only through st.dataframe, st.json and st.code,
never through markdown or HTML: labels and captions here are constant text
and numbers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.core.access import Access
from dashboard.core.schema import MERCHANT_CATEGORIES, PAYMENT_METHODS, STATUSES
from dashboard.core.settings import Settings, SettingsError
from dashboard.store.buffer import Snapshot
from dashboard.store.priority import page_runs
from dashboard.ui import auth, wall
from dashboard.ui import source as live
from dashboard.views import health
from dashboard.views import transactions as analytics
from dashboard.views.filters import (
    QUERY_KEYS,
    VALIDITIES,
    WINDOW_LABELS,
    WINDOWS,
    Display,
    Filters,
    get_all,
    normalise,
)

# Constant CSS for the wall screen (?kiosk=1): hides the sidebar and toolbar, and
# scales titles and counters with the viewport's width (clamp: readable across a
# room at 1080p, twice that at 4K). A literal; it never holds message content.
KIOSK_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"] { display: none !important; }
.block-container, [data-testid="stMainBlockContainer"] { padding: 1.2rem 2.5vw 0.5rem !important;
  max-width: 100% !important; }
h1 { font-size: clamp(2rem, 2.1vw, 5.5rem) !important; padding: 0 0 0.3rem !important; }
h2, h3 { font-size: clamp(1.3rem, 1.25vw, 3.2rem) !important; padding: 0.3rem 0 0.2rem !important; }
[data-testid="stMetricValue"] { font-size: clamp(2.4rem, 2.9vw, 8rem) !important; line-height: 1.15 !important; }
[data-testid="stMetricLabel"] p { font-size: clamp(1.1rem, 1.15vw, 3rem) !important; }
[data-testid="stMetricDelta"] { font-size: clamp(1rem, 1vw, 2.6rem) !important; }
[data-testid="stCaptionContainer"] p { font-size: clamp(0.8rem, 0.72vw, 2rem) !important; }
</style>"""
#: Height in px of a long table on the wall screen: a header and eight rows.
KIOSK_TABLE_HEIGHT = 316


def table_height(display: Display, desk: int | Literal["auto"] = "auto") -> int | Literal["auto"]:
    """The height of a long table: KIOSK_TABLE_HEIGHT on the wall screen, `desk` elsewhere."""
    return KIOSK_TABLE_HEIGHT if display.kiosk else desk


@dataclass(frozen=True)
class Context:
    """What every page needs: settings, the live source, filters, display options and who is looking.

    `source` is already what `person` may see (masked for viewers, see
    `dashboard.ui.auth`); fraud alerts come through `alerts()` for the same reason.
    """

    settings: Settings
    source: live.Source
    filters: Filters
    display: Display
    person: Access

    def alerts(self) -> pd.DataFrame:
        """The fraud alerts as `person` may see them."""
        return auth.alerts(live.alert_log(self.settings).snapshot(), self.person)


@functools.lru_cache(maxsize=4096)  # merchant ids recur on every run; a bounded cache of their keys
def _natural(value: str) -> tuple[str | int, ...]:
    return tuple(int(p) if i % 2 else p for i, p in enumerate(re.split(r"(\d+)", value)))


def _merchant_options(snapshot: Snapshot, selected: Iterable[str]) -> list[str]:
    ranked = analytics.ranked_values(snapshot.codes["merchant_id"], snapshot.dictionaries["merchant_id"])
    return sorted({*ranked, *selected}, key=_natural)


WIDGET_KEYS = ("f_merchant", "f_category", "f_method", "f_status", "f_validity", "f_window", "f_refresh", "f_paused")


def _seed(filters: Filters, display: Display) -> None:
    """Put a view (the URL's, or the last one shown) into the widgets' state."""
    state = st.session_state
    state["f_merchant"] = list(filters.merchants)
    state["f_category"] = list(filters.categories)
    state["f_method"] = list(filters.methods)
    state["f_status"] = list(filters.statuses)
    state["f_validity"] = filters.validity
    state["f_window"] = filters.window
    state["f_refresh"] = display.refresh_seconds
    state["f_paused"] = display.paused
    state["f_kiosk"] = display.kiosk
    state["f_display"] = display  # the wall's options, which no widget holds


def _sidebar(snapshot: Snapshot) -> tuple[Filters, bool, float]:
    with st.sidebar:
        st.header("Filters")
        merchants = st.multiselect(
            "Merchant",
            _merchant_options(snapshot, st.session_state["f_merchant"]),
            key="f_merchant",
            accept_new_options=True,
            placeholder="All merchants",
        )
        categories = st.multiselect("Merchant category", MERCHANT_CATEGORIES, key="f_category", placeholder="All")
        methods = st.multiselect("Payment method", PAYMENT_METHODS, key="f_method", placeholder="All")
        statuses = st.multiselect("Status", STATUSES, key="f_status", placeholder="All")
        validity = st.radio("Validity", VALIDITIES, key="f_validity", horizontal=True, format_func=str.capitalize)
        window = st.selectbox("Time window", list(WINDOWS), key="f_window", format_func=WINDOW_LABELS.__getitem__)
        st.caption("By Kafka timestamp (ingestion time), relative to now.")
        st.header("Refresh")
        refresh = st.number_input("Every (seconds)", min_value=0.5, max_value=300.0, step=0.5, key="f_refresh")
        paused = st.toggle("Pause live updates", key="f_paused")
        st.caption("The URL holds these choices: bookmark it. Add kiosk=1 for a wall screen.")
    filters = Filters(tuple(merchants), tuple(categories), tuple(methods), tuple(statuses), validity, window)
    return filters, paused, float(refresh)


def _full_query(target: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
    """The URL query with our keys set to `target` (and absent when not in it), the others kept."""
    query = st.query_params
    return {**{k: get_all(query, k) for k in query if k not in QUERY_KEYS}, **target}


def _write_query(target: dict[str, str | list[str]]) -> None:
    """Write our keys to the URL (others kept) when they differ from it."""
    if normalise(st.query_params) != normalise(target):
        st.query_params.from_dict(_full_query(target))


def draw(pages: Mapping[str, Any] | None = None, current: Any = None) -> None:
    """Check settings, draw the shared sidebar and kiosk style, and store the page Context.

    `pages` maps the pages' URL names to their st.Page objects and `current`
    is the page about to run (st.navigation's result): a kiosk's playlist
    switches between them. Marked as a page run, as `run_live`'s body is: the
    feed steps aside meanwhile (`store.priority`).
    """
    with page_runs.reading():
        _draw(pages, current)


def _draw(pages: Mapping[str, Any] | None, current: Any) -> None:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        st.error("The dashboard cannot start: a setting in the environment is invalid.")
        st.code(str(exc), language=None, wrap_lines=True)
        st.stop()
    person = auth.gate(settings)  # stops here, before any data is read, unless this person may look
    state = st.session_state
    if any(key not in state for key in WIDGET_KEYS):
        # First run of the session: the URL's view. Later, Streamlit may drop the
        # state of widgets the browser had not reported yet when the page changed
        # (a quick page switch): restore the last view shown, kept outside widgets.
        if "f_view" in state:
            _seed(*state["f_view"])
        else:
            _seed(Filters.from_query(st.query_params), Display.from_query(st.query_params, settings.refresh_seconds))
    src = auth.guard(live.source(settings), person)
    filters, paused, refresh = _sidebar(src.buffer.snapshot())
    display = replace(state["f_display"], refresh_seconds=refresh, paused=paused, kiosk=bool(state.get("f_kiosk")))
    target = {**filters.to_query(), **display.to_query(settings.refresh_seconds)}
    if display.kiosk:
        st.html(KIOSK_CSS)
        pages = pages or {}
        name = next((n for n, page in pages.items() if current is not None and page == current), None)
        wall.draw(settings, display, pages, name, _full_query(target), person)
    _write_query(target)
    state["f_view"] = (filters, display)
    state["f_context"] = Context(settings, src, filters, display, person)


def context() -> Context:
    """Return the Context stored by `draw()` in this run."""
    return st.session_state["f_context"]


def run_live(body: Callable[[], None], display: Display) -> None:
    """Run `body` as a fragment refreshed every `display.refresh_seconds` (never when paused).

    Each run is marked as a page run, so the feed steps aside while it renders (`store.priority`).
    """

    def marked() -> None:
        with page_runs.reading():
            body()

    st.fragment(run_every=display.run_every)(marked)()


@dataclass(frozen=True)
class Selection:
    """The rows of a snapshot that pass the filters, at one instant."""

    snapshot: Snapshot
    mask: np.ndarray
    now_ms: int
    count: int

    def frame(self, columns: list[str]) -> pd.DataFrame:
        """Return a DataFrame of `columns` for the selected rows only."""
        rows = None if self.count == len(self.snapshot) else self.mask
        return self.snapshot.frame(columns, rows=rows)


def select(ctx: Context) -> Selection | None:
    """Show the feed's banner and the selection caption; None (with a notice) when nothing to show."""
    report = ctx.source.health()
    notice = health.banner(report, ctx.settings.stale_seconds, ctx.settings.bootstrap_servers)
    snapshot = ctx.source.buffer.snapshot()
    if notice is not None and (notice.kind != "info" or len(snapshot)):
        getattr(st, notice.kind)(notice.text)  # with rows, an info notice is "quiet: ..." (not stale)
    if len(snapshot) == 0:
        waiting = notice.text if notice is not None and notice.kind == "info" else "Waiting for transactions…"
        st.info(f"{waiting} They appear here as soon as they arrive.")
        return None
    now = live.now_ms()
    mask = ctx.filters.mask(snapshot, now)
    count = int(np.count_nonzero(mask))
    paused = " · paused" if ctx.display.paused else ""
    when = pd.Timestamp(now, unit="ms", tz="UTC").strftime("%H:%M:%S UTC")
    st.caption(
        f"{count:,} of {len(snapshot):,} buffered transactions · {WINDOW_LABELS[ctx.filters.window]}"
        f"{' · filtered' if ctx.filters != Filters(window=ctx.filters.window) else ''} · as of {when}{paused}"
    )
    if count == 0:
        st.info("No transaction matches the filters in this time window.")
        return None
    return Selection(snapshot, mask, now, count)


def live_page(title: str) -> Callable[[Callable[[Selection], None]], Callable[[Selection], None]]:
    """Decorator of a page's body: title the page, then run `body(selection)` live, as `run_live` does.

    The body runs only when there is something to show: `select` has already
    shown the banner, the caption, or why nothing matches.
    """
    ctx = context()
    st.title(title)

    def register(body: Callable[[Selection], None]) -> Callable[[Selection], None]:
        def run() -> None:
            sel = select(ctx)
            if sel is not None:
                body(sel)

        run_live(run, ctx.display)
        return body

    return register
