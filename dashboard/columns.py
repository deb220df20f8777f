"""Turn raw transaction messages into buffer columns: pure, no Kafka.

Every message is judged by `dashboard.validation`, with its own Kafka
timestamp as ingestion time, so the dashboard agrees with the error log.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import orjson

from dashboard.buffer import CATEGORICAL, NUMERIC, Batch, mask_of
from dashboard.validation import DEFAULT_SKEW_MS, check, check_record, is_plainly_valid, parse_timestamp


@dataclass(frozen=True, slots=True)
class RawMessage:
    """What the feed takes from one Kafka message."""

    value: bytes | None
    kafka_ts_ms: int
    partition: int = 0
    offset: int = 0


_NAN = math.nan
_FLOAT_COLS = ("amount", "commission_amount", "vat_amount", "total_amount")


def _num(v: object) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else _NAN


def to_batch(messages: Iterable[RawMessage], skew_ms: int = DEFAULT_SKEW_MS) -> Batch:
    """Decode and validate `messages`; return their columns as a Batch (one row each).

    Undecodable messages still get a row (ids and strings empty, numbers NaN,
    error bit ERR_SCHEMA), so the invalid share on screen is honest.
    """
    num: dict[str, list[float | int]] = {name: [] for name in NUMERIC}
    strs: dict[str, list[str | None]] = {name: [] for name in CATEGORICAL}
    ids: list[str | None] = []
    raw: list[bytes | None] = []
    loads, plain = orjson.loads, is_plainly_valid
    for m in messages:
        raw.append(m.value)
        num["kafka_ts_ms"].append(m.kafka_ts_ms)
        num["partition"].append(m.partition)
        num["offset"].append(m.offset)
        record = None
        if m.value:
            try:
                record = loads(m.value)
            except orjson.JSONDecodeError:
                record = None
        if isinstance(record, dict) and plain(record, m.kafka_ts_ms, skew_ms):
            get = record.get
            ids.append(record["transaction_id"])
            num["ts_ms"].append(parse_timestamp(record["timestamp"]) or -1)
            for name in _FLOAT_COLS:
                num[name].append(record[name])
            num["risk_level"].append(record["risk_level"])
            loc = get("location")
            if isinstance(loc, dict):
                num["lat"].append(_num(loc.get("lat")))
                num["lng"].append(_num(loc.get("lng")))
            else:
                num["lat"].append(_NAN)
                num["lng"].append(_NAN)
            num["error_mask"].append(0)
            for name in CATEGORICAL:
                v = get(name)
                strs[name].append(v if isinstance(v, str) else None)
            dev = get("device_info")
            os_name = dev.get("os") if isinstance(dev, dict) else None
            strs["device_os"][-1] = os_name if isinstance(os_name, str) else None
            continue
        # Slow path: the full judgement, with whatever could be decoded.
        if isinstance(record, dict):
            checked = check_record(record, m.kafka_ts_ms, skew_ms)
        else:
            checked = check(m.value, m.kafka_ts_ms, skew_ms)
        tx = checked.transaction
        num["error_mask"].append(mask_of(checked.codes))
        if tx is None:
            ids.append(None)
            num["ts_ms"].append(-1)
            for name in (*_FLOAT_COLS, "lat", "lng"):
                num[name].append(_NAN)
            num["risk_level"].append(0)
            for name in CATEGORICAL:
                strs[name].append(None)
            continue
        ids.append(tx.transaction_id)
        num["ts_ms"].append(tx.timestamp_ms if tx.timestamp_ms is not None else -1)
        for name in _FLOAT_COLS:
            v = getattr(tx, name)
            num[name].append(_NAN if v is None else v)
        num["risk_level"].append(tx.risk_level or 0)
        num["lat"].append(_NAN if tx.lat is None else tx.lat)
        num["lng"].append(_NAN if tx.lng is None else tx.lng)
        for name in CATEGORICAL:
            strs[name].append(getattr(tx, name))
    numeric = {name: np.asarray(values, dtype=NUMERIC[name]) for name, values in num.items()}
    return Batch(numeric=numeric, strings=strs, ids=ids, raw=raw)
