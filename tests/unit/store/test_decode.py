"""Messages to buffer columns: every row and error bit agrees with dashboard.core.validation."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest

from dashboard.core.schema import ERR_AMOUNT, ERR_DEVICE, ERR_SCHEMA, ERR_TIME
from dashboard.core.validation import check, decode_plain
from dashboard.store.buffer import CATEGORICAL, ERROR_BITS, NUMERIC, mask_of
from dashboard.store.decode import RawMessage, to_batch
from tests.synthetic import DROP
from tests.synthetic import example_event as event

INGEST = datetime(2025, 4, 26, 12, 20, tzinfo=UTC)
INGEST_MS = int(INGEST.timestamp() * 1000)


def msg(record: dict[str, Any] | bytes | None, ts: int = INGEST_MS, partition: int = 0, offset: int = 0) -> RawMessage:
    value = record if isinstance(record, bytes | None) else orjson.dumps(record)
    return RawMessage(value, ts, partition, offset)


def one_row(m: RawMessage, skew_ms: int = 1000) -> dict[str, Any]:
    """The single row of `to_batch([m])` as {column: python value}."""
    batch = to_batch([m], skew_ms)
    assert len(batch) == 1
    row: dict[str, Any] = {name: batch.numeric[name][0].item() for name in NUMERIC}
    row.update({name: batch.strings[name][0] for name in CATEGORICAL})
    row["transaction_id"], row["raw"] = batch.ids[0], batch.raw[0]
    return row


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


# -- valid ------------------------------------------------------------------------
def test_valid_event_fills_every_column() -> None:
    m = msg(event(), partition=2, offset=41)
    assert decode_plain(m.value or b"", INGEST_MS) is not None  # the fast path
    row = one_row(m)
    assert row["error_mask"] == 0
    assert row["transaction_id"] == "99df9fd3-5866-4137-a94c-74f396ed1783"
    assert row["ts_ms"] == int(datetime(2025, 4, 26, 12, 19, 10, 304293, tzinfo=UTC).timestamp() * 1000)
    assert row["kafka_ts_ms"] == INGEST_MS
    assert (row["partition"], row["offset"]) == (2, 41)
    assert (row["amount"], row["commission_amount"], row["vat_amount"], row["total_amount"]) == (
        351671.0,
        7033.0,
        31650.0,
        390354.0,
    )
    assert row["risk_level"] == 3
    assert row["lat"] == pytest.approx(35.6700737, abs=1e-5) and row["lng"] == pytest.approx(51.3459396, abs=1e-5)
    assert row["merchant_id"] == "merch_41" and row["customer_id"] == "cust_303"
    assert row["merchant_category"] == "food_service" and row["payment_method"] == "pos"
    assert row["status"] == "approved" and row["commission_type"] == "progressive"
    assert row["customer_type"] == "CIP"
    assert row["device_os"] is None and row["failure_reason"] is None
    assert row["raw"] == m.value


def test_valid_mobile_event_keeps_device_os_and_failure_reason() -> None:
    row = one_row(
        msg(
            event(
                payment_method="mobile",
                device_info={"os": "iOS", "app_version": "3.1.0", "device_model": "iPhone 15"},
                status="declined",
                failure_reason="insufficient_funds",
            )
        )
    )
    assert row["error_mask"] == 0
    assert row["device_os"] == "iOS" and row["failure_reason"] == "insufficient_funds"


def test_dtypes_follow_the_buffer_schema() -> None:
    batch = to_batch([msg(event()), msg(b"garbage")])
    for name, dtype in NUMERIC.items():
        assert batch.numeric[name].dtype == dtype, name
    assert set(batch.strings) == set(CATEGORICAL)


# -- each rule ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "codes"),
    [
        ({"total_amount": 390355}, [ERR_AMOUNT]),
        ({"timestamp": iso(INGEST + timedelta(seconds=5))}, [ERR_TIME]),  # future
        ({"timestamp": iso(INGEST - timedelta(days=1, seconds=1))}, [ERR_TIME]),  # too old
        ({"timestamp": "yesterday"}, [ERR_TIME]),  # unparsable
        ({"timestamp": DROP}, [ERR_TIME]),
        ({"payment_method": "mobile"}, [ERR_DEVICE]),  # no os
        ({"payment_method": "mobile", "device_info": {"os": "Symbian"}}, [ERR_DEVICE]),
        ({"transaction_id": DROP}, [ERR_SCHEMA]),
        ({"customer_id": ""}, [ERR_SCHEMA]),
        ({"merchant_category": "casino"}, [ERR_SCHEMA]),
        ({"risk_level": 9}, [ERR_SCHEMA]),
        ({"amount": -5}, [ERR_SCHEMA]),
        ({"total_amount": 1, "payment_method": "mobile", "timestamp": "bad"}, [ERR_AMOUNT, ERR_TIME, ERR_DEVICE]),
    ],
)
def test_each_rule_sets_its_bit(changes: dict[str, Any], codes: list[str]) -> None:
    m = msg(event(**changes))
    row = one_row(m)
    assert row["error_mask"] == mask_of(codes)
    assert list(check(m.value, m.kafka_ts_ms).codes) == codes  # the test's premise


def test_invalid_event_keeps_what_could_be_decoded() -> None:
    row = one_row(msg(event(total_amount=390355, merchant_category="casino")))
    assert row["error_mask"] == mask_of([ERR_AMOUNT, ERR_SCHEMA])
    assert row["transaction_id"] == "99df9fd3-5866-4137-a94c-74f396ed1783"
    assert row["total_amount"] == 390355.0 and row["merchant_id"] == "merch_41"
    assert row["merchant_category"] is None  # not one of the known values
    assert row["ts_ms"] > 0 and row["risk_level"] == 3


def test_time_rule_is_judged_against_the_messages_kafka_timestamp_and_skew() -> None:
    future = event(timestamp=iso(INGEST + timedelta(milliseconds=500)))
    assert one_row(msg(future), skew_ms=1000)["error_mask"] == 0
    assert one_row(msg(future), skew_ms=0)["error_mask"] == ERROR_BITS[ERR_TIME]
    old = event(timestamp="2020-01-01T00:00:00Z")
    then = int(datetime(2020, 1, 1, 0, 30, tzinfo=UTC).timestamp() * 1000)
    assert one_row(msg(old, ts=then))["error_mask"] == 0
    assert one_row(msg(old))["error_mask"] == ERROR_BITS[ERR_TIME]


# -- garbage ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", [b"not json", b"", None, b"[1, 2]", b'"text"', b"\xff\xfe{", b"{", b"null"])
def test_garbage_gets_an_empty_schema_error_row(value: bytes | None) -> None:
    row = one_row(msg(value, offset=9))
    assert row["error_mask"] == ERROR_BITS[ERR_SCHEMA]
    assert row["transaction_id"] is None
    assert row["ts_ms"] == -1 and row["risk_level"] == 0
    assert all(math.isnan(row[name]) for name in ("amount", "total_amount", "lat", "lng"))
    assert all(row[name] is None for name in CATEGORICAL)
    assert row["offset"] == 9 and row["kafka_ts_ms"] == INGEST_MS and row["raw"] == value


# -- slow path ----------------------------------------------------------------------------
def test_numeric_string_amounts_take_the_slow_path_and_stay_valid() -> None:
    record = event(amount="351671", vat_amount="31650", commission_amount=7033.0, total_amount="390354.0")
    assert decode_plain(orjson.dumps(record), INGEST_MS) is None
    row = one_row(msg(record))
    assert row["error_mask"] == 0
    assert (row["amount"], row["vat_amount"], row["commission_amount"], row["total_amount"]) == (
        351671.0,
        31650.0,
        7033.0,
        390354.0,
    )
    assert row["transaction_id"] == "99df9fd3-5866-4137-a94c-74f396ed1783"
    assert row["risk_level"] == 3 and row["merchant_id"] == "merch_41"
    assert row["lat"] == pytest.approx(35.6700737, abs=1e-5)


@pytest.mark.parametrize("location", [DROP, None, "Tehran", {"lat": "35.7"}, {}])
def test_missing_or_odd_location_is_nan_and_still_valid(location: Any) -> None:
    row = one_row(msg(event(location=location)))
    assert row["error_mask"] == 0
    assert math.isnan(row["lat"]) and math.isnan(row["lng"])
    slow = one_row(msg(event(location=location, amount="351671")))  # same through the slow path
    assert slow["error_mask"] == 0
    assert math.isnan(slow["lat"]) and math.isnan(slow["lng"])


# -- agreement with validation.check ---------------------------------------------------------
def _mutations(rng: random.Random, n: int) -> list[RawMessage]:
    """Valid, invalid and garbage messages with assorted Kafka timestamps."""
    edits: list[dict[str, Any]] = [
        {},
        {"payment_method": "mobile", "device_info": {"os": "Android"}},
        {"payment_method": "mobile", "device_info": {"os": "android"}},
        {"payment_method": "mobile", "device_info": "iOS"},
        {"total_amount": 390353},
        {"amount": 100.004, "vat_amount": 9, "commission_amount": 2, "total_amount": 111},
        {"amount": "12e3"},
        {"amount": True},
        {"risk_level": "4"},
        {"risk_level": 4.0},
        {"risk_level": 0},
        {"status": None},
        {"timestamp": 1745669950},
        {"timestamp": 1745669950304},
        {"timestamp": "2025-04-26T12:19:10"},
        {"timestamp": "2025-04-26T15:49:10+03:30"},
        {"failure_reason": 7},
        {"merchant_id": 41},
        {"customer_type": "vip", "commission_type": "none"},
    ]
    out = []
    for i in range(n):
        kind = rng.random()
        ts = INGEST_MS + rng.choice([0, -DAY, DAY, 2_000, -2_000, -DAY - 1, 86_400_000 * 300])
        if kind < 0.1:
            value: bytes | None = rng.choice([b"", b"{]", b"42", b'{"transaction_id": 1}', None])
        else:
            changes: dict[str, Any] = {}
            for _ in range(rng.randint(0, 3)):
                changes.update(rng.choice(edits))
            value = orjson.dumps(event(**changes))
        out.append(RawMessage(value, ts, i % 3, i))
    return out


DAY = 86_400_000


def test_error_mask_equals_validation_codes_for_every_message() -> None:
    messages = _mutations(random.Random(3), 2000)
    batch = to_batch(messages, 1000)
    assert len(batch) == len(messages)
    masks = batch.numeric["error_mask"]
    assert 0 < np.count_nonzero(masks == 0) < len(messages)  # both valid and invalid present
    for code, bit in ERROR_BITS.items():
        assert np.count_nonzero(masks & bit) > 0, f"no message broke {code}"
    for i, m in enumerate(messages):
        checked = check(m.value, m.kafka_ts_ms, 1000)
        assert masks[i] == mask_of(checked.codes), (m.value, checked.codes)
        tx = checked.transaction
        assert batch.ids[i] == (tx.transaction_id if tx else None)
        assert batch.numeric["offset"][i] == i and batch.numeric["partition"][i] == i % 3
        assert batch.numeric["kafka_ts_ms"][i] == m.kafka_ts_ms
        assert batch.raw[i] == m.value
        if tx is not None:
            expected_ts = tx.timestamp_ms if tx.timestamp_ms is not None else -1
            assert batch.numeric["ts_ms"][i] == expected_ts
            assert batch.strings["payment_method"][i] == tx.payment_method
            assert batch.strings["device_os"][i] == tx.device_os
            amount = batch.numeric["amount"][i]
            assert (math.isnan(amount) and tx.amount is None) or amount == tx.amount


@pytest.mark.parametrize(
    "changes",
    [
        {"status": {}},
        {"payment_method": []},
        {"merchant_category": {"a": 1}},
        {"payment_method": "mobile", "device_info": {"os": ["iOS"]}},
        {"payment_method": "mobile", "device_info": {"os": {}}},
    ],
)
def test_unhashable_values_are_judged_not_raised(changes: dict[str, Any]) -> None:
    m = msg(event(**changes))
    assert one_row(m)["error_mask"] == mask_of(check(m.value, m.kafka_ts_ms).codes) != 0


def test_odd_values_anywhere_never_raise_and_agree_with_check() -> None:
    rng = random.Random(5)
    odd: list[Any] = [None, True, 0, -1, 2**63 - 1, 1e308, 1.5, "", "1e3", " 12 ", "nan", [], {}, [1]]
    odd += [{"os": "iOS"}, {"lat": 1e308, "lng": -1.0}, "2025-04-26T12:19:10Z", "\u0000", 1e30]
    names = [*event(), "extra"]
    messages = []
    for i in range(3000):
        record = event()
        for _ in range(rng.randint(1, 4)):
            record[rng.choice(names)] = rng.choice(odd)
        messages.append(RawMessage(orjson.dumps(record), INGEST_MS + rng.choice([0, -DAY * 2, DAY]), 0, i))
    with np.errstate(over="ignore"):  # a latitude of 1e308 becomes inf in float32
        masks = to_batch(messages).numeric["error_mask"]
    for m, mask in zip(messages, masks, strict=True):
        assert mask == mask_of(check(m.value, m.kafka_ts_ms).codes), m.value


def test_empty_input_gives_an_empty_batch() -> None:
    batch = to_batch([])
    assert len(batch) == 0
    assert all(len(batch.numeric[name]) == 0 for name in NUMERIC)
