"""Turn raw transaction messages into buffer columns: pure, no Kafka.

Every message is judged by `dashboard.core.validation`, with its own Kafka
timestamp as ingestion time, so the dashboard agrees with the error log.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, NamedTuple

import numpy as np
from msgspec.structs import astuple

from dashboard.core.validation import DEFAULT_SKEW_MS, PlainTransaction, Transaction, internal_error, judge
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
#: A row's fields: a fast-path transaction's own, in its order, as `astuple` gives them in C.
_ROW = PlainTransaction.__struct_fields__
_WIDTH = len(_ROW)
_AT = {name: i for i, name in enumerate(_ROW)}
#: The columns read straight from a row field (the rest: lat, lng, device_os, the message's own fields).
_DIRECT = {
    "ts_ms": "timestamp_ms",
    **{name: name for name in (*_FLOAT_COLS, "risk_level", "transaction_id")},
    **{name: name for name in CATEGORICAL if name != "device_os"},
}
_MESSAGE_FIELDS = {name: attrgetter(name) for name in ("kafka_ts_ms", "partition", "offset")}
_VALUE = attrgetter("value")
#: What stands in a number the full check could not decode.
_MISSING = {"timestamp_ms": -1, "risk_level": 0, **dict.fromkeys(_FLOAT_COLS, _NAN)}


class _Point(NamedTuple):
    lat: float
    lng: float


class _Device(NamedTuple):
    os: str | None


def _off_path_row(full: Transaction | None) -> tuple[object, ...]:
    """The row of a message off the fast path: what the full check decoded (`full`), missing numbers _MISSING."""
    found = {name: getattr(full, name, None) for name in _ROW}
    row = [_MISSING.get(name) if value is None else value for name, value in found.items()]
    lat, lng = (None, None) if full is None else (full.lat, full.lng)
    row[_AT["location"]] = _Point(_NAN if lat is None else lat, _NAN if lng is None else lng)
    row[_AT["device_info"]] = _Device(None if full is None else full.device_os)
    return tuple(row)


def to_batch(messages: Iterable[RawMessage], skew_ms: int = DEFAULT_SKEW_MS) -> Batch:
    """Decode and validate `messages`; return their columns as a Batch (one row each).

    Every message is one row, whatever its bytes: `judge` takes valid ones
    through the typed fast path and gives the rest the full judgement (the
    worker's sequence, so screen and error log agree). Undecodable messages
    (not UTF-8, not JSON, not an object) still get a row (ids and strings
    empty, numbers NaN, error bit ERR_SCHEMA), so counts equal what Kafka
    holds and the invalid share on screen is honest. Never raises.

    Rows go one after another into one flat list (`astuple` in C for the fast
    path); each column is then a slice of it.
    """
    messages = list(messages)
    flat: list[Any] = []
    masks: list[int] = []
    extend, judged = flat.extend, judge
    for m in messages:
        tx, checked = judged(m.value, m.kafka_ts_ms, skew_ms)
        if tx is not None:
            extend(astuple(tx))
            masks.append(0)
            continue
        # Slow path: the full judgement, with whatever could be decoded.
        if checked is None:  # pragma: no cover - judge returns one of the two
            checked = internal_error(AssertionError("judge returned nothing"), m.value)
        extend(_off_path_row(checked.transaction))
        masks.append(mask_of(checked.codes))
    columns: dict[str, Any] = {name: flat[_AT[field] :: _WIDTH] for name, field in _DIRECT.items()}
    locations = flat[_AT["location"] :: _WIDTH]
    columns["lat"] = [_NAN if p is None else p.lat for p in locations]
    columns["lng"] = [_NAN if p is None else p.lng for p in locations]
    columns["device_os"] = [None if d is None else d.os for d in flat[_AT["device_info"] :: _WIDTH]]
    columns["error_mask"] = masks
    columns |= {name: list(map(get, messages)) for name, get in _MESSAGE_FIELDS.items()}
    numeric = {name: np.asarray(columns[name], dtype=dtype) for name, dtype in NUMERIC.items()}
    strings = {name: columns[name] for name in CATEGORICAL}
    return Batch(numeric=numeric, strings=strings, ids=columns["transaction_id"], raw=list(map(_VALUE, messages)))
