"""Smoke tests of every page with streamlit.testing.v1.AppTest, on a prefilled buffer installed without Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.store.buffer import RingBuffer
from dashboard.store.rollups import Rollups
from dashboard.ui import shell, wall
from dashboard.ui import source as live
from dashboard.views.filters import Filters
from tests import insight_data
from tests import synthetic as syn

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
PAGES = [f"app_pages/{name}.py" for name in ("overview", "live_feed", "validation", "merchants", "health")]
DATA_PAGES = PAGES[:-1]
EVENTS = syn.events(3000, seed=7, span_ms=3 * 3_600_000)
BUFFER = syn.buffer_of(EVENTS)
REF = syn.reference(EVENTS)
QUERIES: list[dict[str, Any]] = [
    {},
    {"merchant": ["merch_7", "merch_12"], "window": "15m"},
    {"validity": "invalid", "category": "food_service", "window": "1h", "paused": "1"},
    {"merchant": "nobody", "kiosk": "1"},
]


@pytest.fixture(autouse=True)
def uninstall() -> Iterator[None]:
    yield
    live.install(None)


def run(query: dict[str, Any] | None = None, source: live.Source | None = None, page: str | None = None) -> AppTest:
    """Run the app once (and on `page` if given) at the synthetic data's fixed now."""
    live.install(source or live.StaticSource(BUFFER, syn.health()), clock=lambda: syn.NOW_MS / 1000)
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params.update(query or {})
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r} among {[m.label for m in at.metric]}"
    return values[0]


def texts(at: AppTest) -> list[str]:
    """Every piece of markdown-rendered text on the page."""
    elements = [*at.markdown, *at.caption, *at.title, *at.subheader, *at.header, *at.info, *at.warning]
    elements += [*at.error, *at.success]
    return [str(e.value) for e in elements]


def expected_count(query: dict[str, Any]) -> int:
    return int(Filters.from_query(query).mask(BUFFER.snapshot(), syn.NOW_MS).sum())


@pytest.mark.parametrize("query", QUERIES, ids=["plain", "merchants", "invalid-food", "nobody-kiosk"])
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(page: str, query: dict[str, Any]) -> None:
    at = run(query, page=page)
    assert (
        at.title[0].value
        == {
            "overview": "Overview",
            "live_feed": "Live feed",
            "validation": "Validation",
            "merchants": "Merchants",
            "health": "Health",
        }[Path(page).stem]
    )
    if page in DATA_PAGES and expected_count(query) == 0:
        assert any("No transaction matches" in i.value for i in at.info)


@pytest.mark.parametrize("query", QUERIES[:3])
def test_transaction_counter_equals_rows_in_the_window(query: dict[str, Any]) -> None:
    at = run(query)
    count = expected_count(query)
    assert count > 0
    assert metric(at, "Transactions") == f"{count:,}"


def test_merchant_filter_narrows_the_counter() -> None:
    everything = int(metric(run({"window": "1h"}), "Transactions").replace(",", ""))
    one = int(metric(run({"window": "1h", "merchant": "merch_7"}), "Transactions").replace(",", ""))
    in_ref = REF[(REF["merchant_id"] == "merch_7") & (REF["kafka_ts_ms"] >= syn.NOW_MS - 3_600_000)]
    assert 0 < one == len(in_ref) < everything


def test_filters_survive_a_page_switch_and_reach_the_url() -> None:
    query = {"merchant": "merch_7", "window": "1h"}
    at = run(query, page="app_pages/merchants.py")
    assert at.multiselect(key="f_merchant").value == ["merch_7"]
    assert metric(at, "Transactions") == f"{expected_count(query):,}"
    assert at.query_params.get("merchant") == "merch_7" and at.query_params.get("window") == "1h"


def test_changing_a_filter_writes_the_url() -> None:
    at = run({"window": "15m"})
    at.multiselect(key="f_merchant").set_value(["merch_3", "merch_12"])
    at.selectbox(key="f_window").set_value("1h")
    at.toggle(key="f_paused").set_value(True)
    at.run()
    assert not at.exception
    assert at.query_params["merchant"] == ["merch_3", "merch_12"]
    assert at.query_params["window"] == "1h" and at.query_params["paused"] == "1"
    query = {"merchant": ["merch_3", "merch_12"], "window": "1h"}
    assert metric(at, "Transactions") == f"{expected_count(query):,}"


@pytest.mark.parametrize("page", PAGES)
def test_empty_buffer_waits_for_transactions(page: str) -> None:
    source = live.StaticSource(RingBuffer(1000), syn.health(last_message_age=None, state="connecting"))
    at = run(source=source, page=page)
    if page in DATA_PAGES:
        assert any("Waiting for transactions" in t or "Connecting to" in t for t in texts(at))
        assert not at.metric
    else:
        assert metric(at, "Buffered") == "0 / 1,000"


def test_empty_buffer_without_health_report() -> None:
    at = run(source=live.StaticSource(RingBuffer(1000)))
    assert any("Waiting for transactions" in i.value for i in at.info)


def test_broker_down_shows_an_error_banner_instead_of_live_numbers() -> None:
    at = run(source=live.StaticSource(BUFFER, syn.health(state="down", last_message_age=300.0)))
    assert any(e.value.startswith("No broker at localhost:9092, retrying") for e in at.error)


def test_stale_feed_shows_a_warning() -> None:
    report = syn.health(last_message_age=60.0, last_poll_age=60.0)  # the feed's loop stalled
    at = run(source=live.StaticSource(BUFFER, report), page="app_pages/validation.py")
    assert any("not live" in w.value for w in at.warning)


def test_quiet_feed_shows_an_info_line_not_a_warning() -> None:
    at = run(source=live.StaticSource(BUFFER, syn.health(last_message_age=18.0)), page="app_pages/validation.py")
    assert any(i.value.startswith("Quiet: last transaction 18.0 s ago") for i in at.info)
    assert not any("not live" in w.value for w in at.warning)


def test_bad_setting_is_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUFFER_CAPACITY", "lots")
    at = run()
    assert at.error and "cannot start" in at.error[0].value
    assert at.code[0].value == "BUFFER_CAPACITY='lots' is not an integer"
    assert not at.metric


def test_kiosk_mode_adds_only_the_constant_style() -> None:
    at = run({"kiosk": "1", "window": "15m"})
    assert sorted(h.value for h in at.html) == sorted([shell.KIOSK_CSS, wall.WALL_CSS])
    assert metric(at, "Transactions") == f"{expected_count({'window': '15m'}):,}"
    assert not run({"window": "15m"}).html
    at = run({"kiosk": "1", "rotate": "overview,fraud", "every": "7"})
    progress = wall.PROGRESS_HTML.format(page="overview", seconds=7)
    assert sorted(h.value for h in at.html) == sorted([shell.KIOSK_CSS, wall.WALL_CSS, progress])
    assert not at.warning


def test_hostile_merchant_id_is_shown_as_data_only() -> None:
    at = run({"merchant": syn.XSS}, page="app_pages/live_feed.py")
    table = at.dataframe[0].value
    assert len(table) and set(table["merchant_id"]) == {syn.XSS}
    assert not any("<img" in t for t in texts(at))
    assert at.multiselect(key="f_merchant").value == [syn.XSS]
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception
        assert not any("<img" in t for t in texts(at))


def test_overview_shows_the_latest_message_with_its_validation() -> None:
    at = run()
    latest = EVENTS[-1]
    if latest.record is not None:
        assert at.json[0].value  # the parsed message
    verdict = [s.value for s in at.success] + [e.value for e in at.error]
    assert verdict == (["Valid: passes every rule."] if not latest.codes else ["Invalid: " + ", ".join(latest.codes)])


def test_validation_page_counts_invalid_rows() -> None:
    at = run({"window": "1h"}, page="app_pages/validation.py")
    ref = REF[REF["kafka_ts_ms"] >= syn.NOW_MS - 3_600_000]
    assert metric(at, "Invalid transactions") == f"{int((~ref['valid']).sum()):,}"
    latest = at.dataframe[0].value
    assert len(latest) == min(100, int((~ref["valid"]).sum()))
    assert (latest["errors"] != "").all()


def test_merchants_page_top_five_and_focus() -> None:
    at = run(page="app_pages/merchants.py")
    top = at.dataframe[0].value
    counts = REF[REF["merchant_id"] != ""].groupby("merchant_id").size().reset_index(name="n")
    want = counts.sort_values(["n", "merchant_id"], ascending=[False, True]).head(5)
    assert list(top["merchant_id"]) == list(want["merchant_id"])
    assert at.selectbox(key="merchant_focus").value == want["merchant_id"].iloc[0]
    assert metric(at, "Transactions") == f"{int(want['n'].iloc[0]):,}"


def test_health_page_figures() -> None:
    at = run(page="app_pages/health.py", source=live.StaticSource(BUFFER, syn.health(last_error="Connect refused")))
    assert metric(at, "Broker") == "connected"
    assert metric(at, "Dashboard consumer lag") == "15"
    assert at.code[0].value == "Connect refused"


# --- Commissions, Customers, Volume: rollup-backed pages --------------------------------------------

INSIGHT_PAGES = {
    "app_pages/commissions.py": "Commissions",
    "app_pages/customers.py": "Customers",
    "app_pages/volume.py": "Volume",
}
VARIED = insight_data.varied(3000, seed=9, span_ms=2 * 86_400_000)
VARIED_BUFFER = syn.buffer_of(VARIED)
VARIED_REF = insight_data.reference(VARIED)
INSIGHT_QUERIES: list[dict[str, Any]] = [
    *QUERIES,
    {"merchant": "merch_7", "method": "pos", "status": "approved"},
    {"category": ["retail", "government"], "method": "online", "window": "24h"},
]
#: Charts of each page, then how many always show (the others need rolled-up rows in the window).
CHARTS = {"app_pages/commissions.py": (2, 1), "app_pages/customers.py": (3, 3), "app_pages/volume.py": (3, 1)}


def varied_source(**kwargs: Any) -> live.StaticSource:
    return live.StaticSource(VARIED_BUFFER, syn.health(), **kwargs)


def charts(at: AppTest) -> list[Any]:
    return list(at.get("vega_lite_chart"))


@pytest.mark.parametrize(
    "query", INSIGHT_QUERIES, ids=["plain", "merchants", "invalid-food", "nobody-kiosk", "merchant-pos", "categories"]
)
@pytest.mark.parametrize("page", INSIGHT_PAGES)
def test_insight_pages_render(page: str, query: dict[str, Any]) -> None:
    at = run(query, source=varied_source(), page=page)
    assert at.title[0].value == INSIGHT_PAGES[page]
    count = int(Filters.from_query(query).mask(VARIED_BUFFER.snapshot(), syn.NOW_MS).sum())
    if count == 0:
        assert any("No transaction matches" in i.value for i in at.info)
        assert not charts(at)
        return
    most, least = CHARTS[page]
    assert least <= len(charts(at)) <= most
    if not query:
        assert len(charts(at)) == most
    assert at.dataframe
    # The merchant tables (and, with a merchant filter, every history chart) ignore these filters, and say so.
    narrowing = {"method", "status", "validity"} & set(query)
    caption = "cannot narrow" in " ".join(texts(at))
    assert caption == (page != "app_pages/customers.py" and bool(narrowing))


@pytest.mark.parametrize("page", INSIGHT_PAGES)
def test_insight_pages_wait_on_an_empty_buffer(page: str) -> None:
    source = live.StaticSource(RingBuffer(1000), syn.health(last_message_age=None, state="connecting"))
    at = run(source=source, page=page)
    assert any("Waiting for transactions" in t or "Connecting to" in t for t in texts(at))
    assert not at.metric and not charts(at)


def test_commissions_page_figures_match_the_rows() -> None:
    at = run({"window": "24h"}, source=varied_source(), page="app_pages/commissions.py")
    mask = Filters(window="24h").mask(VARIED_BUFFER.snapshot(), syn.NOW_MS)
    ref = VARIED_REF[mask]
    known = ref[ref["amount"].notna() & ref["commission"].notna()]
    assert metric(at, "Commission ratio") == f"{known['commission'].sum() / known['amount'].sum():.2%}"
    what_if = next(d.value for d in at.dataframe if "progressive" in d.value.columns)
    everything = what_if[what_if["commission_type"] == "all"].iloc[0]
    assert everything["transactions"] == int(ref["amount"].notna().sum())
    assert everything["flat"] == everything["actual"]  # the synthetic events charge 2 %, as the flat scheme
    assert len(charts(at)) == 2


def test_customers_page_counts_distinct_customers() -> None:
    at = run({"category": "food_service"}, source=varied_source(), page="app_pages/customers.py")
    ref = VARIED_REF[VARIED_REF["merchant_category"] == "food_service"]
    assert metric(at, "Customers") == f"{ref.loc[ref['customer_id'] != '', 'customer_id'].nunique():,}"
    by_type = next(d.value for d in at.dataframe if "preferred_method" in d.value.columns and "customers" in d.value)
    assert by_type["transactions"].sum() == len(ref)


def test_volume_page_counts_the_last_fifteen_minutes_by_event_time() -> None:
    at = run(source=varied_source(), page="app_pages/volume.py")
    ts = VARIED_REF["ts_ms"]
    recent = ((ts >= 0) & (ts // 10_000 > syn.NOW_MS // 10_000 - 90) & (ts <= syn.NOW_MS)).sum()
    assert metric(at, "Last 15 minutes") == f"{int(recent):,}"
    assert any("Tehran" in c.value for c in at.caption)


def test_history_comes_from_the_sources_rollups_when_it_has_them() -> None:
    """A feed's rollups reach further back than its buffer: the pages show their count, not the buffer's."""
    older = insight_data.varied(2000, seed=10, now_ms=syn.NOW_MS - 3 * 86_400_000, span_ms=86_400_000)
    rollups = Rollups(clock=lambda: syn.NOW_MS / 1000)
    for part in (older, VARIED):
        rollups.add_snapshot(syn.buffer_of(part).snapshot())
    added = rollups.snapshot().added
    assert added > len(VARIED)
    for page in ("app_pages/commissions.py", "app_pages/volume.py"):
        at = run(source=varied_source(rollups=rollups), page=page)
        assert any(f"{added:,} transactions since" in c.value for c in at.caption), page
    without = run(source=varied_source(), page="app_pages/volume.py")
    assert not any(f"{added:,} transactions since" in c.value for c in without.caption)


def test_hostile_merchant_id_on_insight_pages_is_data_only() -> None:
    at = run({"merchant": syn.XSS}, source=varied_source(), page="app_pages/commissions.py")
    top = next(d.value for d in at.dataframe if "rank" in d.value.columns)
    assert set(top["merchant_id"]) == {syn.XSS}
    for page in INSIGHT_PAGES:
        at.switch_page(page).run()
        assert not at.exception
        assert not any("<img" in t for t in texts(at))
        assert not at.html


def test_a_playlist_with_unknown_pages_says_so_in_one_line() -> None:
    at = run({"kiosk": "1", "rotate": "overview,<script>,volume"})
    assert [w.value for w in at.warning] == [
        "Playlist: no page named '?script?', rotating through overview, volume. Pages: overview, live_feed, "
        "validation, health, merchants, fraud, commissions, customers, volume."
    ]
    assert not at.exception and metric(at, "Transactions")
