"""Synthetic transactions for tests: realistic messages as Kafka would deliver them.

`events(n, now_ms=...)` makes `n` messages (JSON bytes with a Kafka
timestamp), about `invalid_share` of them broken on purpose, each with the
error codes it must get. `buffer_of` decodes them with `to_batch` into a
RingBuffer, as the feed does; `reference` lays the same events out as a
plain pandas DataFrame (object columns, no codes), the independent side of
every comparison.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import orjson
import pandas as pd

from dashboard.core.schema import (
    ERR_AMOUNT,
    ERR_DEVICE,
    ERR_SCHEMA,
    ERR_TIME,
    MERCHANT_CATEGORIES,
    PAYMENT_METHODS,
    STATUSES,
)
from dashboard.store.buffer import RingBuffer
from dashboard.store.decode import RawMessage, to_batch

XSS = "<img src=x onerror=alert(1)>"
NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CATEGORY_WEIGHTS = np.array([2.0, 6.0, 1.0, 1.0, 0.5])
METHOD_WEIGHTS = np.array([0.50, 0.30, 0.15, 0.05])
STATUS_WEIGHTS = np.array([0.88, 0.07, 0.05])
DEVICES = ({"os": "Android", "app_version": "2.4.1", "device_model": "Samsung Galaxy S25"},)
BREAKS = ("amount", "time", "device", "enum", "garbage", "amount+device")
BREAK_CODES = {
    "amount": (ERR_AMOUNT,),
    "time": (ERR_TIME,),
    "device": (ERR_DEVICE,),
    "enum": (ERR_SCHEMA,),
    "garbage": (ERR_SCHEMA,),
    "amount+device": (ERR_AMOUNT, ERR_DEVICE),
}


@dataclass(frozen=True)
class Event:
    """One synthetic message, the record it was made from (None: garbage) and its expected codes."""

    message: RawMessage
    record: dict[str, Any] | None
    codes: tuple[str, ...]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def events(
    n: int,
    *,
    now_ms: int = NOW_MS,
    span_ms: int = 2 * 3_600_000,
    invalid_share: float = 0.1,
    merchants: int = 30,
    seed: int = 0,
    xss: bool = True,
) -> list[Event]:
    """Return `n` events with Kafka timestamps spread over (now - span, now - 1 s], oldest first.

    Merchant 0 is named XSS when `xss` is set, so every page meets hostile text.
    """
    rng = np.random.default_rng(seed)
    kafka = np.sort(rng.integers(now_ms - span_ms + 1, now_ms - 1000, n, endpoint=True))
    names = [f"merch_{i + 1}" for i in range(merchants)]
    if xss:
        names[0] = XSS
    merchant = rng.integers(0, merchants, n)
    category = rng.choice(len(MERCHANT_CATEGORIES), n, p=CATEGORY_WEIGHTS / CATEGORY_WEIGHTS.sum())
    method = rng.choice(len(PAYMENT_METHODS), n, p=METHOD_WEIGHTS)
    status = rng.choice(len(STATUSES), n, p=STATUS_WEIGHTS)
    amount = rng.lognormal(12.8, 0.8, n).astype(np.int64)
    broken = rng.random(n) < invalid_share
    kind = rng.integers(0, len(BREAKS), n)
    out = []
    for i in range(n):
        k = int(kafka[i])
        a = int(amount[i])
        record: dict[str, Any] = {
            "transaction_id": str(uuid.UUID(int=int(rng.integers(0, 2**63)))),
            "timestamp": _iso(k - int(rng.integers(0, 2000))),
            "customer_id": f"cust_{int(rng.integers(1, 1000))}",
            "merchant_id": names[merchant[i]],
            "merchant_category": MERCHANT_CATEGORIES[category[i]],
            "payment_method": PAYMENT_METHODS[method[i]],
            "amount": a,
            "location": {"lat": 35.72 + float(rng.normal(0, 0.05)), "lng": 51.33 + float(rng.normal(0, 0.05))},
            "device_info": dict(DEVICES[0]) if method[i] in (0, 2) else {},
            "status": STATUSES[status[i]],
            "commission_type": "flat",
            "commission_amount": a * 2 // 100,
            "vat_amount": a * 9 // 100,
            "total_amount": a + a * 2 // 100 + a * 9 // 100,
            "customer_type": "individual",
            "risk_level": int(rng.integers(1, 4)),
            "failure_reason": None if status[i] == 0 else "cancelled",
        }
        codes: tuple[str, ...] = ()
        if broken[i]:
            how = BREAKS[kind[i]]
            codes = BREAK_CODES[how]
            if "amount" in how:
                record["total_amount"] += 7
            if how == "time":
                record["timestamp"] = _iso(k - 2 * 86_400_000)
            if "device" in how:
                record["payment_method"], record["device_info"] = "mobile", {}
            if how == "enum":
                record["status"] = "weird"
            if how == "garbage":
                out.append(Event(RawMessage(b"\xff not json " + XSS.encode(), k, 0, i), None, codes))
                continue
        out.append(Event(RawMessage(orjson.dumps(record), k, i % 3, i), record, codes))
    return out


def buffer_of(evs: Sequence[Event], capacity: int | None = None, chunk: int = 1000) -> RingBuffer:
    """Return a RingBuffer holding `evs`, decoded by `to_batch` in chunks as the feed would."""
    buffer = RingBuffer(capacity or max(len(evs), 1))
    for start in range(0, len(evs), chunk):
        buffer.append(to_batch([e.message for e in evs[start : start + chunk]]))
    return buffer


def _enum(record: dict[str, Any] | None, name: str, allowed: Sequence[str]) -> str:
    value = record.get(name) if record else None
    return value if isinstance(value, str) and value in allowed else ""


def reference(evs: Sequence[Event]) -> pd.DataFrame:
    """Return the events as plain pandas: object string columns ("" when missing), amount NaN when unknown."""
    rows = []
    for e in evs:
        r = e.record
        rows.append(
            {
                "merchant_id": (r or {}).get("merchant_id") or "",
                "merchant_category": _enum(r, "merchant_category", MERCHANT_CATEGORIES),
                "payment_method": _enum(r, "payment_method", PAYMENT_METHODS),
                "status": _enum(r, "status", STATUSES),
                "amount": float(r["amount"]) if r else math.nan,
                "kafka_ts_ms": e.message.kafka_ts_ms,
                "valid": not e.codes,
                "codes": e.codes,
            }
        )
    frame = pd.DataFrame(rows)
    return frame.astype({c: object for c in ("merchant_id", "merchant_category", "payment_method", "status")})


def health(**overrides: Any) -> SimpleNamespace:
    """Return a feed health report of a connected, fresh feed, with `overrides` applied."""
    fields: dict[str, Any] = {
        "bootstrap": "localhost:9092",
        "state": "connected",
        "last_error": None,
        "last_error_at": None,
        "messages_per_second": 3.5,
        "last_message_age": 0.4,
        "newest_kafka_age": 0.5,
        "lag": {0: 3, 1: 0, 2: 12},
        "invalid_counts": {ERR_AMOUNT: 4, ERR_TIME: 2},
        "messages_total": 1234,
        "ingest_lag": 40,
        "error_records": 6,
    }
    fields.update(overrides)
    return SimpleNamespace(**fields)


#: Pass as a value to `example_event` to leave that field out.
DROP = object()


def example_event(**changes: Any) -> dict[str, Any]:
    """The example transaction of DATA.md with `changes` applied (DROP removes a field)."""
    base: dict[str, Any] = {
        "transaction_id": "99df9fd3-5866-4137-a94c-74f396ed1783",
        "timestamp": "2025-04-26T12:19:10.304293Z",
        "customer_id": "cust_303",
        "merchant_id": "merch_41",
        "merchant_category": "food_service",
        "payment_method": "pos",
        "amount": 351671,
        "location": {"lat": 35.670073724546555, "lng": 51.345939574762355},
        "device_info": {},
        "status": "approved",
        "commission_type": "progressive",
        "commission_amount": 7033,
        "vat_amount": 31650,
        "total_amount": 390354,
        "customer_type": "CIP",
        "risk_level": 3,
        "failure_reason": None,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}
