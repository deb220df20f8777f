"""Deliberately broken events: one business rule broken per injected event. Pure.

The three rules of DATA.md are broken in equal shares, and only the chosen
rule is touched, so `check(value, kafka_ms).codes` of an injected event is
exactly its recorded codes:

- ERR_AMOUNT: total_amount leaves out the VAT, or is off by 1..10,000 IRR;
- ERR_TIME: the timestamp field moves 1-6 h after, or 25-72 h before, the
  message's Kafka timestamp (the Kafka timestamp itself stays the event time,
  so backfilled history breaks the rule the same way as live events);
- ERR_DEVICE: the payment becomes a mobile one with device_info lacking a
  known OS ({}, no os, os null, "Windows", lower-case "android").
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from dashboard.core.schema import ERR_AMOUNT, ERR_DEVICE, ERR_TIME
from dashboard.pulse.batch import Batch, iso_utc

INJECTED_CODES: Final = (ERR_AMOUNT, ERR_TIME, ERR_DEVICE)
HOUR_US: Final = 3_600_000_000
FUTURE_US: Final = (HOUR_US + 60_000_000, 6 * HOUR_US)
PAST_US: Final = (25 * HOUR_US, 72 * HOUR_US)
MAX_TOTAL_ERROR: Final = 10_000
BROKEN_DEVICES: Final[tuple[dict[str, str | None], ...]] = (
    {},
    {"app_version": "3.1.0", "device_model": "iPhone 15"},
    {"os": None, "app_version": "2.4.1", "device_model": "Samsung Galaxy S25"},
    {"os": "Windows", "app_version": "2.4.1", "device_model": "Surface Pro 9"},
    {"os": "android", "app_version": "1.9.5", "device_model": "Google Pixel 6"},
)


def inject_invalid(batch: Batch, rate: float, rng: np.random.Generator) -> int:
    """Break one rule in a random share `rate` of the batch's clean events; return how many.

    Each broken event's rule code is appended to `batch.injected[i]`.
    """
    n = len(batch)
    chosen = np.flatnonzero(rng.random(n) < rate)
    codes = rng.integers(0, len(INJECTED_CODES), len(chosen))
    variants = rng.integers(0, 2**31, len(chosen))
    for i, code, variant in zip(chosen.tolist(), codes.tolist(), variants.tolist(), strict=True):
        record = batch.records[i]
        name = INJECTED_CODES[code]
        if name == ERR_AMOUNT:
            _break_amount(record, variant)
        elif name == ERR_TIME:
            record["timestamp"] = iso_utc(batch.kafka_ms[i] * 1000 + _time_shift_us(variant))
        else:
            record["payment_method"] = "mobile"
            record["device_info"] = dict(BROKEN_DEVICES[variant % len(BROKEN_DEVICES)])
        batch.injected[i] = (*batch.injected[i], name)
    return len(chosen)


def _break_amount(record: dict[str, Any], variant: int) -> None:
    """Make total_amount wrong but non-negative: VAT forgotten, or an off-by error."""
    vat: int = record["vat_amount"]
    total: int = record["total_amount"]
    if variant % 2 == 0 and vat > 0:
        record["total_amount"] = total - vat
    else:
        record["total_amount"] = total + 1 + (variant // 2) % MAX_TOTAL_ERROR


def _time_shift_us(variant: int) -> int:
    """A shift that breaks the time rule: 1-6 h into the future or 25-72 h into the past."""
    low, high = FUTURE_US if variant % 2 == 0 else PAST_US
    shift = low + (variant // 2) * ((high - low) // 2**30)
    return shift if variant % 2 == 0 else -shift
