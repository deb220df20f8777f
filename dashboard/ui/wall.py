"""The wall screen (`?kiosk=1`): the page playlist and its progress line, fraud-alert banners over every page, a tone.

`draw()` runs from `shell.draw()` in the entrypoint, so on every kiosk page,
before the page itself. Its fragment ticks every TICK_SECONDS: it shows the
alerts that are new to this screen (`dashboard.views.wall`) as banners fixed
over the page, beeps for them when the URL asks (`sound=1`), and, when this
page has been up `every` seconds, reruns the app, whose run switches to the
playlist's next page with the URL's query (filters and wall options) kept.

The CSS and HTML here are constants plus numbers and known page names; an
alert's customer reaches the page only through `st.code`, its rule and
evidence as constants and numbers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import streamlit as st

from dashboard.core.access import Access
from dashboard.core.settings import Settings
from dashboard.ui import auth
from dashboard.ui import source as live
from dashboard.views import wall
from dashboard.views.filters import Display, Playlist, playlist

TICK_SECONDS = 1.0
TONE = wall.tone_wav()
TONE_KEPT_MS = 2_500  # how long the tone's (hidden) player stays
#: Constant CSS of the wall's parts: the progress line along the top edge, the
#: banners fixed over the page's top, the hidden audio player.
WALL_CSS = """<style>
.wall-progress { position: fixed; top: 0; left: 0; z-index: 1000001; width: 100%; height: 0.35rem;
  background: #ff4b4b; transform-origin: left center; transform: scaleX(0);
  animation-name: wall-progress; animation-timing-function: linear; animation-fill-mode: forwards; }
@keyframes wall-progress { from { transform: scaleX(0); } to { transform: scaleX(1); } }
.st-key-wall-alerts { position: fixed !important; top: 1rem; left: 50%; transform: translateX(-50%);
  z-index: 1000000; width: min(92vw, 90rem) !important; gap: 0.6rem; }
.st-key-wall-alerts:empty { display: none; }
[class*="st-key-wall-alert-"] { background: #b4232a; border-radius: 0.6rem; padding: 0.7rem 1.4rem 0.4rem;
  box-shadow: 0 0.5rem 2rem rgba(0, 0, 0, 0.6); gap: 0.2rem; }
[class*="st-key-wall-alert-"] p { color: #ffffff; font-size: clamp(1.1rem, 1.35vw, 3.2rem); margin: 0; }
[class*="st-key-wall-alert-"] pre, [class*="st-key-wall-alert-"] code { font-size: clamp(1rem, 1.1vw, 2.6rem); }
[class*="st-key-wall-sound-"] { position: fixed !important; left: 0; bottom: 0; width: 1px !important; height: 1px;
  overflow: hidden; opacity: 0; }
</style>"""
PROGRESS_HTML = '<div class="wall-progress" data-page="{page}" style="animation-duration: {seconds:g}s"></div>'


def draw(
    settings: Settings,
    display: Display,
    pages: Mapping[str, Any],
    current: str | None,
    query: Mapping[str, str | list[str]],
    person: Access,
) -> None:
    """Draw the wall's parts on a kiosk page: `pages` maps URL names to st.Page objects, `current` is this page's.

    `query` is the URL query every page of the playlist gets (filters and options); `person` is who is
    looking (a banner shows a customer as they may see it).
    """
    st.html(WALL_CSS)
    plan = playlist(display.rotate, pages)
    problem = plan.problem(pages)
    if problem is not None:
        st.warning(problem, icon=":material/playlist_remove:")
    state = st.session_state
    if state.get("wall_page", (None,))[0] != current:
        state["wall_page"] = (current, time.monotonic())
    following = _due(plan, current, display.every)
    if following is not None:
        # From the full run, not from the fragment: a switch requested inside a fragment run
        # now and then left the browser with an empty page and no new run.
        st.switch_page(pages[following], query_params=dict(query))
    if plan.pages and current is not None:
        st.html(PROGRESS_HTML.format(page=current, seconds=display.every))  # a known page name and a number
    if "wall_banners" not in state:  # this screen opens: alerts so far count as shown
        state["wall_banners"] = wall.opened(live.alert_log(settings).total, live.now_ms())
    _tick(settings, display, plan, current, person)


def _due(plan: Playlist, current: str | None, every: float) -> str | None:
    """The page to show now when this one has been up `every` seconds, else None (also for a one-page list)."""
    if not plan.pages or current is None:
        return None
    if time.monotonic() - st.session_state["wall_page"][1] < every:
        return None
    following = plan.next_after(current)
    if following == current:
        st.session_state["wall_page"] = (current, time.monotonic())
        return None
    return following


@st.fragment(run_every=TICK_SECONDS)
def _tick(settings: Settings, display: Display, plan: Playlist, current: str | None, person: Access) -> None:
    """Show the banners and sound; when this page's time is up, rerun the app, whose run moves to the next page."""
    _alerts(settings, display, person)
    if _due(plan, current, display.every) is not None:
        st.rerun(scope="app")


def _alerts(settings: Settings, display: Display, person: Access) -> None:
    """Update this screen's banners from the alert log and draw them (newest first)."""
    log = live.alert_log(settings)
    now = live.now_ms()
    state = st.session_state
    total, rows = log.since(state["wall_banners"].seen)
    banners, fresh = wall.advance(state["wall_banners"], total, rows, now, display.alert_seconds)
    state["wall_banners"] = banners
    with st.container(key="wall-alerts"):
        for i, shown in enumerate(reversed(banners.shown)):
            with st.container(key=f"wall-alert-{i}"):
                st.markdown(f"**:material/gpp_maybe: {wall.headline(shown.row, now)}**")  # constants and numbers
                customer = auth.customer(str(shown.row.get("customer_id", "")), person)  # masked for viewers
                st.code(wall.customer_text(customer), language=None)  # message content: as code
    if fresh and display.sound:
        # Kept on screen a little longer than a tick, so a tick whose output is lost cannot swallow
        # the tone; a new number per batch of alerts makes a new player, which plays again.
        state["wall_tone"] = (state.get("wall_tone", (0, 0))[0] + 1, now + TONE_KEPT_MS)
    tone, until = state.get("wall_tone", (0, 0))
    if now < until:
        with st.container(key=f"wall-sound-{tone}"):
            st.audio(TONE, format="audio/wav", autoplay=True)
