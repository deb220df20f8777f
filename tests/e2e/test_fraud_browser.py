"""The Fraud page end to end: a pattern produced now shows as an alert within seconds.

The real pipeline: events on a fresh topic, the ingest worker running, the
app served by `streamlit run app.py`, headless Chromium on the Fraud page.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.harness import ARTIFACTS, VIEWPORT, App, running_app, screenshot
from tests.kafka.kafkatools import produce, start_module

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

DEADLINE_MS = 30_000


def payment(customer: str, ts_ms: int, lat: float, lng: float, rng: random.Random) -> dict[str, Any]:
    amount = rng.randint(50_000, 900_000)
    commission, vat = int(amount * 0.02), int(amount * 0.09)
    return {
        "transaction_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms / 1000)) + f".{ts_ms % 1000:03d}Z",
        "customer_id": customer,
        "merchant_id": "merch_3",
        "merchant_category": "retail",
        "payment_method": "pos",
        "amount": amount,
        "location": {"lat": lat, "lng": lng},
        "device_info": {},
        "status": "approved",
        "commission_type": "flat",
        "commission_amount": commission,
        "vat_amount": vat,
        "total_amount": amount + commission + vat,
        "customer_type": "individual",
        "risk_level": 5,
        "failure_reason": None,
    }


@pytest.fixture(scope="module")
def fraud_app(e2e_env: dict[str, str]) -> Iterator[App]:
    """The ingest worker and the app, both on the module's fresh topics."""
    worker = start_module("dashboard.ingest", e2e_env, log=ARTIFACTS / "fraud-ingest.log")
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

        rng = random.Random(5)
        now = int(time.time() * 1000)
        burst = [payment("cust_burst", now - 60_000 + i * 8_000, 35.70, 51.33, rng) for i in range(7)]
        geo = [
            payment("cust_geo", now - 120_000, 35.72, 51.33, rng),
            payment("cust_geo", now - 30_000, 29.59, 52.58, rng),
        ]
        messages = [(e["customer_id"].encode(), orjson.dumps(e), now) for e in burst + geo]
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
