"""Smoke tests of every page with streamlit.testing.v1.AppTest, on a prefilled buffer installed without Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import live
from dashboard.buffer import RingBuffer
from dashboard.filters import Filters
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
    source = live.StaticSource(RingBuffer(1000), syn.health(last_message_age_s=None, state="connecting"))
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
    at = run(source=live.StaticSource(BUFFER, syn.health(state="down", last_message_age_s=300.0)))
    assert any(e.value.startswith("No broker at localhost:9092, retrying") for e in at.error)


def test_stale_feed_shows_a_warning() -> None:
    at = run(source=live.StaticSource(BUFFER, syn.health(last_message_age_s=60.0)), page="app_pages/validation.py")
    assert any("not live" in w.value for w in at.warning)


def test_bad_setting_is_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUFFER_CAPACITY", "lots")
    at = run()
    assert at.error and "cannot start" in at.error[0].value
    assert at.code[0].value == "BUFFER_CAPACITY='lots' is not an integer"
    assert not at.metric


def test_kiosk_mode_adds_only_the_constant_style() -> None:
    at = run({"kiosk": "1", "window": "15m"})
    assert len(at.html) == 1 and "<style>" in at.html[0].value
    assert metric(at, "Transactions") == f"{expected_count({'window': '15m'}):,}"
    assert not run({"window": "15m"}).html


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
