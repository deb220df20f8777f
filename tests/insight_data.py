"""Synthetic events for the Commissions, Customers and Volume tests, and their plain pandas reference.

`varied(n, ...)` takes `tests.synthetic.events` (realistic messages, some
broken on purpose) and gives each merchant one commission type and each
customer one customer type, as Pulse does, so every type appears.
`reference(evs)` lays the events out as a plain pandas DataFrame computed
from the records themselves (event time parsed from the ISO text, unknown
enum values as ""), the independent side of every comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import orjson
import pandas as pd

from dashboard.core.schema import COMMISSION_TYPES, CUSTOMER_TYPES, MERCHANT_CATEGORIES, PAYMENT_METHODS, STATUSES
from tests import synthetic as syn

ENUMS = {
    "merchant_category": MERCHANT_CATEGORIES,
    "payment_method": PAYMENT_METHODS,
    "status": STATUSES,
    "commission_type": COMMISSION_TYPES,
    "customer_type": CUSTOMER_TYPES,
}


def varied(n: int, *, seed: int = 0, **kwargs: Any) -> list[syn.Event]:
    """Return `syn.events(n, seed=seed, **kwargs)` with per-merchant commission and per-customer types."""
    out = []
    for e in syn.events(n, seed=seed, **kwargs):
        r = e.record
        if r is None:
            out.append(e)
            continue
        r = dict(r)
        r["commission_type"] = COMMISSION_TYPES[sum(map(ord, str(r["merchant_id"]))) % len(COMMISSION_TYPES)]
        r["customer_type"] = CUSTOMER_TYPES[int(str(r["customer_id"]).split("_")[1]) % len(CUSTOMER_TYPES)]
        out.append(syn.Event(replace(e.message, value=orjson.dumps(r)), r, e.codes))
    return out


def reference(evs: Sequence[syn.Event]) -> pd.DataFrame:
    """Return the events as plain pandas rows, one per event, in order.

    Columns ts_ms (event time, -1 when the message is not a JSON record),
    kafka_ts_ms, merchant_id, customer_id ("" when missing), the enums ("" when
    missing or unknown), amount and commission (NaN when missing), valid.
    """
    rows = []
    for e in evs:
        r = e.record or {}
        ts = pd.Timestamp(r["timestamp"]).value // 1_000_000 if "timestamp" in r else -1
        rows.append(
            {
                "ts_ms": ts,
                "kafka_ts_ms": e.message.kafka_ts_ms,
                "merchant_id": r.get("merchant_id") or "",
                "customer_id": r.get("customer_id") or "",
                **{name: r.get(name) if r.get(name) in allowed else "" for name, allowed in ENUMS.items()},
                "amount": float(r["amount"]) if "amount" in r else math.nan,
                "commission": float(r["commission_amount"]) if "commission_amount" in r else math.nan,
                "valid": not e.codes,
            }
        )
    frame = pd.DataFrame(rows)
    frame["minute"] = np.where(frame["ts_ms"] >= 0, frame["ts_ms"] // 60_000, -1)
    return frame.astype({c: object for c in ("merchant_id", "customer_id", *ENUMS)})
