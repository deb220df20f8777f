"""The Fraud page with AppTest: alert counters, the merchant filter on alerts, an empty log, data only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.core.schema import FRAUD_AMOUNT, FRAUD_GEO, FRAUD_VELOCITY
from dashboard.fraud.rules import Alert
from dashboard.store.alert_log import AlertLog, parse_alert
from dashboard.ui import source as live
from tests import synthetic as syn

APP = Path(__file__).resolve().parents[2] / "app.py"
PAGE = "app_pages/fraud.py"
EVENTS = [e for e in syn.events(600, seed=11, span_ms=3_600_000) if not e.codes]
BUFFER = syn.buffer_of(EVENTS)


def alert_of(rule: str, events: list[syn.Event]) -> dict[str, Any]:
    records = [e.record for e in events]
    evidence = {
        FRAUD_VELOCITY: {"count": len(records), "span_seconds": 60.0},
        FRAUD_GEO: {"distance_km": 700.5, "minutes": 2.0},
        FRAUD_AMOUNT: {"amount": 9_000_000, "average": 100_000.0, "ratio": 90.0, "history": 6},
    }[rule]
    alert = Alert(rule, records[0]["customer_id"], tuple(r["transaction_id"] for r in records), evidence, syn.NOW_MS)
    row = parse_alert(alert.to_json({"partition": 0, "offset": 1}), syn.NOW_MS)
    assert row is not None
    return row


def alert_log() -> AlertLog:
    log = AlertLog()
    log.extend(
        [
            alert_of(FRAUD_VELOCITY, EVENTS[0:6]),
            alert_of(FRAUD_VELOCITY, EVENTS[10:16]),
            alert_of(FRAUD_GEO, EVENTS[20:22]),
            alert_of(FRAUD_AMOUNT, EVENTS[30:31]),
        ]
    )
    return log


@pytest.fixture(autouse=True)
def uninstall() -> Iterator[None]:
    yield
    live.install(None)


def run(log: AlertLog, query: dict[str, Any] | None = None) -> AppTest:
    live.install(live.StaticSource(BUFFER, syn.health()), clock=lambda: syn.NOW_MS / 1000, alerts=log)
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params.update(query or {})
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_counters_per_rule_equal_the_alerts() -> None:
    at = run(alert_log())
    assert at.title[0].value == "Fraud"
    got = metrics(at)
    assert (got["Alerts"], got[FRAUD_VELOCITY], got[FRAUD_GEO], got[FRAUD_AMOUNT]) == ("4", "2", "1", "1")
    latest = at.dataframe[0].value
    assert len(latest) == 4 and latest["rule"].tolist()[0] == FRAUD_AMOUNT  # newest first


def test_merchant_filter_keeps_alerts_naming_that_merchants_transactions() -> None:
    merchant = EVENTS[20].record["merchant_id"]
    log = alert_log()
    expected = sum(
        any(e.record["merchant_id"] == merchant for e in group)
        for group in (EVENTS[0:6], EVENTS[10:16], EVENTS[20:22], EVENTS[30:31])
    )
    assert 0 < expected < 4
    at = run(log, {"merchant": merchant})
    assert metrics(at)["Alerts"] == str(expected)


def test_empty_alert_log_says_so() -> None:
    at = run(AlertLog())
    assert any("No fraud alert yet" in str(i.value) for i in at.info)


def test_hostile_customer_id_is_data_only() -> None:
    log = AlertLog()
    row = alert_of(FRAUD_AMOUNT, EVENTS[30:31])
    row["customer_id"] = "<img src=x onerror=alert(1)>"
    log.extend([row])
    at = run(log)
    assert all("<img" not in str(m.value) for m in at.markdown)
    assert "<img src=x onerror=alert(1)>" in at.dataframe[0].value["customer_id"].tolist()
