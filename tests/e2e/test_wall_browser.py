"""The wall screen end to end: playlist, fraud-alert banners, layouts at 1080p and 4K, distinct axis labels.

The real pipeline: the module's data set and two fraud patterns on fresh
topics, the ingest worker running, `python -m dashboard.ui`, headless Chromium
at 1920x1080 and 3840x2160. Every wait has a deadline; measurements are read
from the DOM (scroll sizes, the data grids' scrollers, Vega's SVG axis labels).
"""

from __future__ import annotations

import itertools
import os
import re
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.harness import ARTIFACTS, ROOT, App, Dataset, fraud_patterns, running_app, screenshot, wait_charts
from tests.kafka.kafkatools import produce, read_all, start_module

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

DEADLINE_MS = 30_000
FHD = {"width": 1920, "height": 1080}
UHD = {"width": 3840, "height": 2160}
#: URL name -> title of every page.
TITLES = {
    "overview": "Overview",
    "live_feed": "Live feed",
    "validation": "Validation",
    "health": "Health",
    "merchants": "Merchants",
    "fraud": "Fraud",
    "commissions": "Commissions",
    "customers": "Customers",
    "volume": "Volume",
}
BANNER = ".st-key-wall-alerts [class*='st-key-wall-alert-']"
DOCS = ROOT / "docs"

# The layout of a page, read from the DOM: page and main-area scroll sizes, the data grids whose content is
# wider than their box (a cut column) or that reach past the viewport, the x-axis labels of every chart.
MEASURE = """() => {
  const doc = document.documentElement, main = document.querySelector('[data-testid="stMain"]');
  const grids = [...document.querySelectorAll('[data-testid="stDataFrame"]')].map(g => {
    const s = g.querySelector('.dvn-scroller'), r = g.getBoundingClientRect();
    return {scroll: s ? s.scrollWidth : 0, client: s ? s.clientWidth : 0, right: r.right};
  });
  const axes = [...document.querySelectorAll('[data-testid="stVegaLiteChart"] g.role-axis')]
    .filter(a => (a.getAttribute('aria-label') || '').startsWith('X-axis'))
    .map(a => [...a.querySelectorAll('g.role-axis-label text')].map(t => t.textContent));
  return {doc: [doc.scrollWidth, doc.clientWidth, doc.scrollHeight, doc.clientHeight],
          main: [main.scrollWidth, main.clientWidth, main.scrollHeight, main.clientHeight],
          width: window.innerWidth, grids, axes};
}"""


# In the page: records every <audio> element added (the tone's player is short-lived) and, with the
# browser's clock, every change in the number of banners, so their time on screen is measured without polling.
RECORDER = """(selector) => {
  window.wallTones = [];
  window.wallBanners = [];
  let last = 0;
  new MutationObserver(records => {
    records.forEach(r => r.addedNodes.forEach(n => {
      const found = n.nodeName === 'AUDIO' ? [n] : (n.querySelectorAll ? [...n.querySelectorAll('audio')] : []);
      found.forEach(a => window.wallTones.push({autoplay: a.autoplay, src: a.currentSrc || a.src}));
    }));
    const count = document.querySelectorAll(selector).length;
    if (count !== last) { window.wallBanners.push([performance.now(), count]); last = count; }
  }).observe(document.body, {childList: true, subtree: true});
}"""


# In the page: the title of each page shown from now on, with the browser's clock (the app switches pages
# without reloading the document, so this survives the playlist).
TITLES_SEEN = """() => {
  window.wallTitles = [];
  let last = document.querySelector('h1')?.textContent;
  new MutationObserver(() => {
    const now = document.querySelector('h1')?.textContent;
    if (now && now !== last) { window.wallTitles.push([performance.now(), now]); last = now; }
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def wait_alerts(bootstrap: str, topic: str, count: int) -> None:
    """Wait until the fraud topic holds `count` committed alerts."""
    deadline = time.monotonic() + DEADLINE_MS / 1000
    while len(read_all(bootstrap, topic, idle=0.5, deadline=5)) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"fewer than {count} alerts in {topic} within {DEADLINE_MS / 1000:.0f} s")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def wall_app(e2e_env: dict[str, str], dataset: Dataset) -> Iterator[App]:
    """The ingest worker and the app on the module's topics; two alerts raised before the app starts."""
    bootstrap = e2e_env["KAFKA_BOOTSTRAP_SERVERS"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    worker = start_module("dashboard.ingest", e2e_env, "--processes", "1", log=ARTIFACTS / "wall-ingest.log")
    try:
        produce(bootstrap, e2e_env["TRANSACTIONS_TOPIC"], fraud_patterns(int(time.time() * 1000), "cust_a", "cust_b"))
        wait_alerts(bootstrap, e2e_env["FRAUD_TOPIC"], 2)
        with running_app(e2e_env, ARTIFACTS / "wall-streamlit.log") as server:
            yield server
    finally:
        worker.terminate()
        worker.wait(20)


@contextmanager
def tab(browser: Browser, viewport: dict[str, int], **options: Any) -> Iterator[Page]:
    """A fresh browser context (its own Streamlit session) at `viewport`, dark scheme."""
    context = browser.new_context(viewport=viewport, color_scheme="dark", **options)
    try:
        yield context.new_page()
    finally:
        context.close()


def url(app: App, page: str, **query: str) -> str:
    return f"{app.url}/{'' if page == 'overview' else page}?" + urllib.parse.urlencode(query)


def title(page: Page) -> str:
    heading = page.locator("h1")
    expect(heading).to_have_count(1, timeout=DEADLINE_MS)
    return heading.inner_text().strip()


def expect_title(page: Page, name: str, timeout_ms: float = DEADLINE_MS) -> None:
    expect(page.locator("h1")).to_have_text(TITLES[name], timeout=timeout_ms)


def no_exception(page: Page, where: str) -> None:
    errors = page.get_by_test_id("stException")
    assert errors.count() == 0, f"{where}: {errors.all_inner_texts()}"


# -- the playlist -------------------------------------------------------------------
def test_playlist_visits_the_listed_pages_in_order_with_the_filters_kept(browser: Browser, wall_app: App) -> None:
    playlist = ["overview", "fraud", "volume", "health"]
    query = {"kiosk": "1", "rotate": ",".join(playlist), "every": "5", "window": "15m", "merchant": "merch_1"}
    with tab(browser, FHD) as page:
        console: list[str] = []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text[:300]}") if m.type == "error" else None)
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        page.goto(url(wall_app, "overview", **query))
        expect_title(page, "overview")
        progress = page.locator(".wall-progress")
        expect(progress).to_have_attribute("style", re.compile(r"animation-duration: 5s"))
        page.evaluate(TITLES_SEEN)
        for name in [*playlist[1:], playlist[0]]:
            try:
                expect_title(page, name, timeout_ms=15_000)
            except AssertionError as exc:
                seen = page.evaluate("() => window.wallTitles")
                screenshot(page, ARTIFACTS / "wall-playlist-failed.png")
                raise AssertionError(
                    f"{exc}\ntitles so far: {seen}\nurl: {page.url}\nconsole: {console}\n{wall_app.log_tail()}"
                ) from None
            kept = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
            assert kept["window"] == ["15m"] and kept["merchant"] == ["merch_1"], page.url
            assert kept["kiosk"] == ["1"] and kept["rotate"] == [",".join(playlist)] and kept["every"] == ["5"]
            expect(page.locator(".wall-progress")).to_have_attribute("data-page", name)
            no_exception(page, name)
        # The filters act on every page, not only in the URL: the selection caption says so.
        caption = page.get_by_test_id("stCaptionContainer").filter(has_text="buffered transactions")
        expect(caption).to_contain_text("Last 15 minutes · filtered", timeout=DEADLINE_MS)
        seen = page.evaluate("() => window.wallTitles")  # [[ms, title], ...] as the page changed
        assert [t for _, t in seen][:4] == [TITLES[n] for n in [*playlist[1:], playlist[0]]], seen
        dwell = [round((b[0] - a[0]) / 1000, 1) for a, b in itertools.pairwise(seen)]
        print(f"seconds on each page (every=5): {dwell}")
        assert all(4.0 <= d <= 9.0 for d in dwell[:3]), dwell  # 5 s, switched on 1 s ticks
        screenshot(page, ARTIFACTS / "wall-playlist.png")


def test_unknown_playlist_pages_give_one_readable_line(browser: Browser, wall_app: App) -> None:
    with tab(browser, FHD) as page:
        page.goto(url(wall_app, "overview", kiosk="1", rotate="overview,nope", every="5"))
        expect(page.get_by_test_id("stAlert")).to_contain_text(
            "Playlist: no page named 'nope', rotating through overview.", timeout=DEADLINE_MS
        )
        no_exception(page, "a playlist with an unknown page")


# -- alerts -------------------------------------------------------------------------
def test_a_new_alert_shows_as_a_banner_goes_after_alert_seconds_and_never_replays(
    browser: Browser, wall_app: App, e2e_env: dict[str, str]
) -> None:
    with tab(browser, UHD) as page:
        page.goto(url(wall_app, "volume", kiosk="1", alert_seconds="8", sound="1"))
        expect_title(page, "volume")
        wait_charts(page)
        banners = page.locator(BANNER)
        time.sleep(2)  # a few ticks of the wall: the alerts raised before it opened stay unshown
        expect(banners).to_have_count(0)
        page.evaluate(RECORDER, BANNER)

        produced = time.monotonic()
        messages = fraud_patterns(int(time.time() * 1000), "cust_wall_burst", "cust_wall_geo", seed=9)
        produce(e2e_env["KAFKA_BOOTSTRAP_SERVERS"], e2e_env["TRANSACTIONS_TOPIC"], messages)
        expect(banners.filter(has_text="cust_wall_burst")).to_have_count(1, timeout=DEADLINE_MS)
        expect(banners).to_have_count(2, timeout=DEADLINE_MS)
        seen = time.monotonic()
        print(f"banner on screen {seen - produced:.1f} s after the pattern was produced")
        expect(banners.filter(has_text="Velocity")).to_contain_text("6 transactions in 40.0 s")
        expect(banners.filter(has_text="Impossible travel")).to_contain_text("cust_wall_geo")
        tones = page.evaluate("() => window.wallTones")
        assert tones and all(t["autoplay"] and t["src"] for t in tones), f"sound=1: a tone for new alerts: {tones}"
        expect_title(page, "volume")  # a banner over the Volume page, not a page switch
        no_exception(page, "Volume with banners")
        screenshot(page, ARTIFACTS / "wall-4k-alert.png")
        if os.environ.get("UPDATE_DOCS") == "1":
            screenshot(page, DOCS / "wall-4k.png")

        expect(banners).to_have_count(0, timeout=20_000)
        changes = page.evaluate("() => window.wallBanners")  # [[ms, banners on screen], ...]
        shown = next(t for t, n in changes if n > 0)
        gone = next(t for t, n in changes if n == 0 and t > shown)
        print(f"banners on screen for {(gone - shown) / 1000:.1f} s (alert_seconds=8): {changes}")
        assert 7.0 <= (gone - shown) / 1000 <= 12.0, changes  # 8 s, drawn and cleared on 1 s ticks
        page.reload()
        expect_title(page, "volume")
        time.sleep(4)  # four ticks: old alerts would be back by now
        expect(banners).to_have_count(0)


# -- layout --------------------------------------------------------------------------
def check_layout(page: Page, name: str, scrolls: bool = False) -> dict[str, Any]:
    """Measure a loaded page and fail on scrolling (unless it `scrolls`, as a desk page may, downwards only),
    cut table columns or repeated axis labels."""
    got = page.evaluate(MEASURE)
    sw, cw, sh, ch = got["doc"]
    msw, mcw, msh, mch = got["main"]
    assert sw <= cw and msw <= mcw, f"{name}: the page scrolls sideways {got['doc']} {got['main']}"
    assert scrolls or (sh <= ch and msh <= mch), f"{name}: the page scrolls {got['doc']} {got['main']}"
    for grid in got["grids"]:
        assert grid["scroll"] <= grid["client"] + 1, f"{name}: a table's last column is cut {grid}"
        assert grid["right"] <= got["width"] + 1, f"{name}: a table runs off the screen {grid}"
    for labels in got["axes"]:
        assert len(set(labels)) == len(labels), f"{name}: repeated axis labels {labels}"
    return got


@pytest.mark.parametrize(("viewport", "shot"), [(FHD, "wall-1080p.png"), (UHD, "wall-4k.png")])
def test_every_kiosk_page_fits_the_screen(browser: Browser, wall_app: App, viewport: dict[str, int], shot: str) -> None:
    with tab(browser, viewport) as page:
        for name in TITLES:
            page.goto(url(wall_app, name, kiosk="1"))
            expect_title(page, name)
            expect(page.get_by_test_id("stDataFrame").or_(page.get_by_test_id("stMetric")).first).to_be_visible(
                timeout=DEADLINE_MS
            )
            wait_charts(page)
            no_exception(page, name)
            check_layout(page, name)
        page.goto(url(wall_app, "overview", kiosk="1", window="15m"))
        expect_title(page, "overview")
        wait_charts(page)
        check_layout(page, "overview")
        metric = page.get_by_test_id("stMetricValue").first
        size = float(metric.evaluate("e => getComputedStyle(e).fontSize").removesuffix("px"))
        print(f"{viewport['width']}x{viewport['height']}: counters {size:.0f} px")
        assert size >= viewport["width"] * 0.025, "counters scale with the viewport"
        screenshot(page, ARTIFACTS / shot)
        if os.environ.get("UPDATE_DOCS") == "1" and viewport == FHD:
            screenshot(page, DOCS / shot)


def test_time_axes_show_distinct_labels_and_tables_keep_their_last_column_at_1600px(
    browser: Browser, wall_app: App, e2e_env: dict[str, str]
) -> None:
    """Short windows once showed "00:30 00:30 00:30"; wide tables once cut their last column at 1600 px.

    At 1600x900 with the sidebar (the narrowest main area): the Overview at three windows, then every page
    with a wide table. Fresh events make sure every window has a chart.
    """
    fresh = fraud_patterns(int(time.time() * 1000), "cust_axes_a", "cust_axes_b", seed=3)
    produce(e2e_env["KAFKA_BOOTSTRAP_SERVERS"], e2e_env["TRANSACTIONS_TOPIC"], fresh)
    with tab(browser, {"width": 1600, "height": 900}) as page:
        for window in ("5m", "15m", "1h"):
            page.goto(url(wall_app, "overview", window=window))
            expect_title(page, "overview")
            labels = page.locator("[data-testid='stVegaLiteChart'] g.role-axis-label text")
            expect(labels.first).to_be_visible(timeout=DEADLINE_MS)
            axes = check_layout(page, f"overview at {window}", scrolls=True)["axes"]
            print(f"{window}: {axes}")
            assert axes and len(axes[0]) >= 3, f"the rate chart at {window} has a time axis of a few labels: {axes}"
        for name in ("live_feed", "validation", "fraud", "commissions", "customers", "volume"):
            page.goto(url(wall_app, name))
            expect_title(page, name)
            expect(page.get_by_test_id("stDataFrame").first).to_be_visible(timeout=DEADLINE_MS)
            wait_charts(page)
            check_layout(page, f"{name} at 1600 px", scrolls=True)
