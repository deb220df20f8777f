"""The Fraud page end to end: a pattern produced now shows as an alert within seconds.

The real pipeline: events on a fresh topic, the ingest worker running, the
app served by `python -m dashboard.ui`, headless Chromium on the Fraud page.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.harness import ARTIFACTS, VIEWPORT, App, fraud_patterns, running_app, screenshot
from tests.kafka.kafkatools import produce, start_module

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

DEADLINE_MS = 30_000


@pytest.fixture(scope="module")
def fraud_app(e2e_env: dict[str, str]) -> Iterator[App]:
    """The ingest worker and the app, both on the module's fresh topics."""
    worker = start_module("dashboard.ingest", e2e_env, "--processes", "1", log=ARTIFACTS / "fraud-ingest.log")
    try:
        with running_app(e2e_env, ARTIFACTS / "fraud-streamlit.log") as server:
            yield server
    finally:
        worker.terminate()
        worker.wait(20)


def test_injected_patterns_show_on_the_fraud_page_within_seconds(
    browser: Browser, fraud_app: App, e2e_env: dict[str, str]
) -> None:
    context = browser.new_context(viewport=VIEWPORT, color_scheme="dark")
    page = context.new_page()
    try:
        page.goto(f"{fraud_app.url}/fraud")
        expect(page.get_by_text("No fraud alert yet")).to_be_visible(timeout=DEADLINE_MS)

        messages = fraud_patterns(int(time.time() * 1000), "cust_burst", "cust_geo")
        produced_at = time.monotonic()
        produce(e2e_env["KAFKA_BOOTSTRAP_SERVERS"], e2e_env["TRANSACTIONS_TOPIC"], messages)

        alerts = page.get_by_test_id("stMetric").filter(has_text="Alerts").get_by_test_id("stMetricValue")
        expect(alerts).to_have_text("2", timeout=DEADLINE_MS)
        seen_after = time.monotonic() - produced_at
        for rule in ("velocity", "geo_impossible"):
            metric = page.get_by_test_id("stMetric").filter(has_text=rule).get_by_test_id("stMetricValue")
            expect(metric).to_have_text("1")
        expect(page.get_by_test_id("stException")).to_have_count(0)
        screenshot(page, ARTIFACTS / "fraud.png")
        print(f"alerts on screen {seen_after:.1f} s after the pattern was produced")
        assert seen_after < DEADLINE_MS / 1000
    finally:
        context.close()
