"""Pure views of fraud alerts for the Fraud page and the wall: per-rule series, top customers, geo points, evidence."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dashboard.core.schema import FRAUD_AMOUNT, FRAUD_GEO, FRAUD_RULES, FRAUD_VELOCITY
from dashboard.store.buffer import Snapshot

#: Reference cities for the map (the generator's far-away cities and Tehran).
CITIES = pd.DataFrame(
    {
        "city": ["Tehran", "Isfahan", "Mashhad", "Shiraz", "Tabriz"],
        "lat": [35.7219, 32.6546, 36.2605, 29.5918, 38.0800],
        "lng": [51.3347, 51.6680, 59.6168, 52.5837, 46.2919],
    }
)


def restrict_to_rows(alerts: pd.DataFrame, snapshot: Snapshot, rows: np.ndarray) -> pd.DataFrame:
    """The alerts naming at least one transaction among the snapshot `rows` (a boolean mask).

    This is how buffer filters such as the merchant filter apply to alerts,
    which carry transaction ids but no merchant.
    """
    if alerts.empty:
        return alerts
    kept = set(snapshot.ids[rows].tolist())
    hit = [any(i.encode() in kept for i in ids) for ids in alerts["transaction_ids"]]
    return alerts[np.asarray(hit, dtype=bool)]


def per_rule_series(alerts: pd.DataFrame, freq: str = "1min") -> pd.DataFrame:
    """Alerts per rule per time bin (by the alert's event time): columns time, rule, alerts."""
    if alerts.empty:
        return pd.DataFrame({"time": pd.Series(dtype="datetime64[ms, UTC]"), "rule": [], "alerts": []})
    frame = alerts.dropna(subset=["event_time"]).assign(time=lambda f: f["event_time"].dt.floor(freq))
    out = frame.groupby(["time", "rule"], observed=True).size().rename("alerts").reset_index()
    out["rule"] = out["rule"].astype(str)
    return out


def top_customers(alerts: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """Customers with most alerts: customer_id, alerts, one column per rule, last alert time."""
    if alerts.empty:
        return pd.DataFrame(columns=["customer_id", "alerts", *FRAUD_RULES, "last_alert"])
    counts = pd.crosstab(alerts["customer_id"], alerts["rule"].astype(str))
    counts = counts.reindex(columns=list(FRAUD_RULES), fill_value=0)
    counts.insert(0, "alerts", counts.sum(axis=1))
    counts["last_alert"] = alerts.groupby("customer_id")["event_time"].max()
    return counts.sort_values(["alerts", "last_alert"], ascending=False).head(n).reset_index()


def geo_points(alerts: pd.DataFrame, snapshot: Snapshot) -> pd.DataFrame:
    """Locations of the transactions behind geographical alerts, looked up in the buffer.

    Columns: lat, lng, customer_id, transaction_id, alert (index of the alert,
    so both legs of a pair can be joined by a line). Transactions no longer
    buffered are left out.
    """
    geo = alerts[alerts["rule"] == FRAUD_GEO]
    if geo.empty or len(snapshot) == 0:
        return pd.DataFrame(columns=["lat", "lng", "customer_id", "transaction_id", "alert"])
    wanted = {
        tid.encode(): (n, cust)
        for n, (ids, cust) in enumerate(zip(geo["transaction_ids"], geo["customer_id"], strict=True))
        for tid in ids
    }
    found = np.isin(snapshot.ids, np.array(list(wanted), dtype=snapshot.ids.dtype))
    rows = np.flatnonzero(found)
    lat, lng = snapshot.numeric["lat"][rows], snapshot.numeric["lng"][rows]
    ids = snapshot.ids[rows].tolist()
    return pd.DataFrame(
        {
            "lat": lat.astype(np.float64),
            "lng": lng.astype(np.float64),
            "customer_id": [wanted[i][1] for i in ids],
            "transaction_id": [i.decode() for i in ids],
            "alert": [wanted[i][0] for i in ids],
        }
    )


def customer_rows(snapshot: Snapshot, customer_id: str) -> np.ndarray:
    """Boolean mask of the buffered transactions of `customer_id`."""
    try:
        code = snapshot.dictionaries["customer_id"].index(customer_id)
    except ValueError:
        return np.zeros(len(snapshot), dtype=bool)
    return snapshot.codes["customer_id"] == code


def _number(value: object) -> float:
    """A finite float of an evidence value, NaN for anything else (a bad record's evidence is any JSON)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value) if math.isfinite(value) else math.nan


def evidence_text(row: Mapping[str, Any]) -> str:
    """One line of evidence for an alert row (numbers only; "?" for a missing or bad one)."""

    def num(key: str, spec: str) -> str:
        value = _number(row.get(key))
        return "?" if math.isnan(value) else format(value, spec)

    rule = row.get("rule")
    if rule == FRAUD_VELOCITY:
        return f"{num('count', '.0f')} transactions in {num('span_seconds', '.1f')} s"
    if rule == FRAUD_GEO:
        return f"{num('distance_km', ',.1f')} km apart in {num('minutes', '.2f')} min"
    if rule == FRAUD_AMOUNT:
        return f"{num('amount', ',.0f')} IRR vs average {num('average', ',.0f')} ({num('ratio', '.1f')}x)"
    return ""
