"""Turn raw transaction messages into buffer columns: pure, no Kafka.

Every message is judged by `dashboard.core.validation`, with its own Kafka
timestamp as ingestion time, so the dashboard agrees with the error log.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dashboard.core.validation import DEFAULT_SKEW_MS, internal_error, judge
from dashboard.store.buffer import CATEGORICAL, NUMERIC, Batch, mask_of


@dataclass(frozen=True, slots=True)
class RawMessage:
    """What the feed takes from one Kafka message."""

    value: bytes | None
    kafka_ts_ms: int
    partition: int = 0
    offset: int = 0


_NAN = math.nan
_FLOAT_COLS = ("amount", "commission_amount", "vat_amount", "total_amount")


def to_batch(messages: Iterable[RawMessage], skew_ms: int = DEFAULT_SKEW_MS) -> Batch:
    """Decode and validate `messages`; return their columns as a Batch (one row each).

    Every message is one row, whatever its bytes: `judge` takes valid ones
    through the typed fast path and gives the rest the full judgement (the
    worker's sequence, so screen and error log agree). Undecodable messages
    (not UTF-8, not JSON, not an object) still get a row (ids and strings
    empty, numbers NaN, error bit ERR_SCHEMA), so counts equal what Kafka
    holds and the invalid share on screen is honest. Never raises.
    """
    num: dict[str, list[float | int]] = {name: [] for name in NUMERIC}
    strs: dict[str, list[str | None]] = {name: [] for name in CATEGORICAL}
    ids: list[str | None] = []
    raw: list[bytes | None] = []
    judged = judge
    ts_col, amount_col, commission_col = num["ts_ms"], num["amount"], num["commission_amount"]
    vat_col, total_col, risk_col, lat_col, lng_col = (
        num["vat_amount"],
        num["total_amount"],
        num["risk_level"],
        num["lat"],
        num["lng"],
    )
    mask_col = num["error_mask"]
    merchant, customer, category, method = (
        strs["merchant_id"],
        strs["customer_id"],
        strs["merchant_category"],
        strs["payment_method"],
    )
    status, ctype, custtype, device_os, failure = (
        strs["status"],
        strs["commission_type"],
        strs["customer_type"],
        strs["device_os"],
        strs["failure_reason"],
    )
    for m in messages:
        value = m.value
        raw.append(value)
        num["kafka_ts_ms"].append(m.kafka_ts_ms)
        num["partition"].append(m.partition)
        num["offset"].append(m.offset)
        tx, checked = judged(value, m.kafka_ts_ms, skew_ms)
        if tx is not None:
            ids.append(tx.transaction_id)
            ts_col.append(tx.timestamp_ms)
            amount_col.append(tx.amount)
            commission_col.append(tx.commission_amount)
            vat_col.append(tx.vat_amount)
            total_col.append(tx.total_amount)
            risk_col.append(tx.risk_level)
            loc = tx.location
            lat_col.append(loc.lat if loc is not None else _NAN)
            lng_col.append(loc.lng if loc is not None else _NAN)
            mask_col.append(0)
            merchant.append(tx.merchant_id)
            customer.append(tx.customer_id)
            category.append(tx.merchant_category)
            method.append(tx.payment_method)
            status.append(tx.status)
            ctype.append(tx.commission_type)
            custtype.append(tx.customer_type)
            dev = tx.device_info
            device_os.append(dev.os if dev is not None else None)
            failure.append(tx.failure_reason)
            continue
        # Slow path: the full judgement, with whatever could be decoded.
        if checked is None:  # pragma: no cover - judge returns one of the two
            checked = internal_error(AssertionError("judge returned nothing"), value)
        full = checked.transaction
        num["error_mask"].append(mask_of(checked.codes))
        if full is None:
            ids.append(None)
            num["ts_ms"].append(-1)
            for name in (*_FLOAT_COLS, "lat", "lng"):
                num[name].append(_NAN)
            num["risk_level"].append(0)
            for name in CATEGORICAL:
                strs[name].append(None)
            continue
        ids.append(full.transaction_id)
        num["ts_ms"].append(full.timestamp_ms if full.timestamp_ms is not None else -1)
        for name in _FLOAT_COLS:
            v = getattr(full, name)
            num[name].append(_NAN if v is None else v)
        num["risk_level"].append(full.risk_level or 0)
        num["lat"].append(_NAN if full.lat is None else full.lat)
        num["lng"].append(_NAN if full.lng is None else full.lng)
        for name in CATEGORICAL:
            strs[name].append(getattr(full, name))
    numeric = {name: np.asarray(values, dtype=NUMERIC[name]) for name, values in num.items()}
    return Batch(numeric=numeric, strings=strs, ids=ids, raw=raw)
