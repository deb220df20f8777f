"""Single transaction messages for feed tests: valid, or broken in one named way, at a given Kafka time."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from dashboard.core.schema import ERR_AMOUNT, ERR_DEVICE, ERR_SCHEMA, ERR_TIME
from dashboard.core.timeunits import DAY_MS


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def event(ts_ms: int, kind: str = "valid") -> bytes:
    """A transaction whose Kafka timestamp will be `ts_ms`, broken as `kind` says."""
    ev: dict[str, Any] = {
        "transaction_id": str(uuid.uuid4()),
        "timestamp": iso(ts_ms - 500),
        "customer_id": "cust_7",
        "merchant_id": "merch_3",
        "merchant_category": "retail",
        "payment_method": "pos",
        "amount": 1000,
        "location": {"lat": 35.7, "lng": 51.3},
        "device_info": {},
        "status": "approved",
        "commission_type": "flat",
        "commission_amount": 20,
        "vat_amount": 90,
        "total_amount": 1110,
        "customer_type": "individual",
        "risk_level": 2,
        "failure_reason": None,
    }
    if kind == "garbage":
        return b"\x00 not json"
    if kind == ERR_AMOUNT:
        ev["total_amount"] = 1111
    elif kind == ERR_TIME:
        ev["timestamp"] = iso(ts_ms - 2 * DAY_MS)
    elif kind == ERR_DEVICE:
        ev["payment_method"] = "mobile"
    elif kind == ERR_SCHEMA:
        ev["risk_level"] = 9
    return orjson.dumps(ev)
