"""Decoding and every validation rule, including the edge cases of the spine issue."""

from __future__ import annotations

import math
import random
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.core.schema import ENUM_FIELDS, ERR_AMOUNT, ERR_DEVICE, ERR_SCHEMA, ERR_TIME
from dashboard.core.validation import (
    DAY_MS,
    PlainTransaction,
    check,
    check_record,
    decode_plain,
    ms_to_iso,
    parse_timestamp,
)
from dashboard.ingest.transform import Source, error_records
from tests.synthetic import DROP
from tests.synthetic import example_event as event

INGEST = datetime(2025, 4, 26, 12, 20, tzinfo=UTC)
INGEST_MS = int(INGEST.timestamp() * 1000)


def codes(record: dict[str, Any], ingest_ms: int = INGEST_MS) -> list[str]:
    return list(check(orjson.dumps(record), ingest_ms).codes)


def test_example_event_from_data_md_is_valid() -> None:
    result = check(orjson.dumps(event()), INGEST_MS)
    assert result.valid
    tx = result.transaction
    assert tx is not None
    assert tx.amount == 351671 and tx.merchant_id == "merch_41" and tx.lat == pytest.approx(35.6700737)
    assert tx.timestamp_ms == parse_timestamp("2025-04-26T12:19:10.304293Z")


# -- amount rule --------------------------------------------------------------
def test_amount_rule_is_exact_on_integers() -> None:
    assert codes(event(total_amount=390355)) == [ERR_AMOUNT]
    v = check(orjson.dumps(event(total_amount=390355)), INGEST_MS).violations[0]
    assert v.evidence == {"expected_total": 390354, "actual_total": 390355}


def test_amount_rule_allows_one_cent_on_fractions() -> None:
    assert codes(event(amount=100.004, vat_amount=9, commission_amount=2, total_amount=111)) == []
    assert codes(event(amount=100.02, vat_amount=9, commission_amount=2, total_amount=111)) == [ERR_AMOUNT]


def test_numeric_strings_are_converted() -> None:
    assert codes(event(amount="351671", total_amount="390354.0")) == []
    assert codes(event(amount="351672")) == [ERR_AMOUNT]


@pytest.mark.parametrize("bad", [DROP, None, "abc", True, -5, "nan", "inf", "-1", [], {}])
def test_broken_amount_field_is_schema_error_and_amount_rule_not_judged(bad: Any) -> None:
    result = check(orjson.dumps(event(vat_amount=bad)), INGEST_MS)
    assert result.codes == (ERR_SCHEMA,)
    assert result.violations[0].evidence["field"] == "vat_amount"


def test_nan_and_infinity_literals_are_schema_errors() -> None:
    # JSON has no NaN literal; a producer writing Python's json.dumps emits one.
    for literal in (b"NaN", b"Infinity"):
        raw = orjson.dumps(event()).replace(b'"amount":351671', b'"amount":' + literal)
        result = check(raw, INGEST_MS)
        assert ERR_SCHEMA in result.codes  # either undecodable or a bad amount: never valid
    assert check_record(event(amount=math.nan), INGEST_MS).codes == (ERR_SCHEMA,)
    assert check_record(event(amount=math.inf), INGEST_MS).codes == (ERR_SCHEMA,)


# -- time rule ----------------------------------------------------------------
def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def test_time_rule_uses_kafka_timestamp_not_reader_clock() -> None:
    old = event(timestamp="2020-01-01T00:00:00Z")
    ingest = int(datetime(2020, 1, 1, 1, tzinfo=UTC).timestamp() * 1000)
    assert codes(old, ingest) == []
    assert codes(old) == [ERR_TIME]


def test_future_tolerated_up_to_skew() -> None:
    assert codes(event(timestamp=iso(INGEST + timedelta(milliseconds=1000)))) == []
    assert codes(event(timestamp=iso(INGEST + timedelta(milliseconds=1001)))) == [ERR_TIME]
    assert check(orjson.dumps(event(timestamp=iso(INGEST + timedelta(seconds=5)))), INGEST_MS, skew_ms=10_000).valid


def test_more_than_a_day_old_is_error_exactly_a_day_is_not() -> None:
    assert codes(event(timestamp=iso(INGEST - timedelta(days=1)))) == []
    assert codes(event(timestamp=iso(INGEST - timedelta(days=1, milliseconds=1)))) == [ERR_TIME]
    v = check(orjson.dumps(event(timestamp=iso(INGEST - timedelta(days=2)))), INGEST_MS).violations[0]
    assert v.evidence["ingestion_timestamp"] == ms_to_iso(INGEST_MS)
    assert v.evidence["delta_ms"] == -2 * DAY_MS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-04-26T12:19:10Z", datetime(2025, 4, 26, 12, 19, 10, tzinfo=UTC)),
        ("2025-04-26T12:19:10.5Z", datetime(2025, 4, 26, 12, 19, 10, 500000, tzinfo=UTC)),
        ("2025-04-26T15:49:10+03:30", datetime(2025, 4, 26, 12, 19, 10, tzinfo=UTC)),
        ("2025-04-26T12:19:10", datetime(2025, 4, 26, 12, 19, 10, tzinfo=UTC)),  # no zone: UTC
        (1745669950, datetime(2025, 4, 26, 12, 19, 10, tzinfo=UTC)),  # epoch seconds
        (1745669950.5, datetime(2025, 4, 26, 12, 19, 10, 500000, tzinfo=UTC)),
        (1745669950500, datetime(2025, 4, 26, 12, 19, 10, 500000, tzinfo=UTC)),  # epoch ms
    ],
)
def test_timestamp_formats(text: Any, expected: datetime) -> None:
    assert parse_timestamp(text) == int(expected.timestamp() * 1000)
    assert codes(event(timestamp=text)) == []


@pytest.mark.parametrize("bad", [DROP, None, "yesterday", "", True, [], "2025-13-01T00:00:00Z", 1e300])
def test_missing_or_unparsable_timestamp_is_invalid_format(bad: Any) -> None:
    result = check(orjson.dumps(event(timestamp=bad)), INGEST_MS)
    assert result.codes == (ERR_TIME,)
    assert result.violations[0].message == "invalid timestamp format"


# -- device rule --------------------------------------------------------------
@pytest.mark.parametrize("device", [DROP, None, {}, {"os": "ios"}, {"os": "Windows"}, "iOS", {"os": None}, {"os": 1}])
def test_mobile_without_ios_or_android_is_device_error(device: Any) -> None:
    result = check(orjson.dumps(event(payment_method="mobile", device_info=device)), INGEST_MS)
    assert result.codes == (ERR_DEVICE,)
    assert result.violations[0].evidence["payment_method"] == "mobile"


@pytest.mark.parametrize("os_name", ["iOS", "Android"])
def test_mobile_with_ios_or_android_is_valid(os_name: str) -> None:
    assert codes(event(payment_method="mobile", device_info={"os": os_name, "app_version": "1"})) == []


def test_device_rule_only_for_mobile() -> None:
    assert codes(event(payment_method="online", device_info={"os": "Windows"})) == []


# -- schema -------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [None, b"", b"\xff\xfe garbage", b"not json", b"[1, 2]", b'"a string"', b"42", b"null", b"{", b"x" * 900_000],
)
def test_undecodable_payload_is_the_only_error(payload: bytes | None) -> None:
    result = check(payload, INGEST_MS)
    assert result.transaction is None
    assert result.codes == (ERR_SCHEMA,)
    assert len(result.violations[0].evidence["excerpt"]) <= 200 * 4  # bounded, even when escaped


def test_deep_nesting_is_schema_error_not_recursion_error() -> None:
    payload = b"[" * 100_000 + b"]" * 100_000
    assert check(payload, INGEST_MS).codes == (ERR_SCHEMA,)
    nested_object = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert check(nested_object, INGEST_MS).codes == (ERR_SCHEMA,)


@pytest.mark.parametrize("name", ["transaction_id", "customer_id", "merchant_id"])
@pytest.mark.parametrize("bad", [DROP, None, 42, ""])
def test_ids_must_be_strings(name: str, bad: Any) -> None:
    result = check(orjson.dumps(event(**{name: bad})), INGEST_MS)
    assert result.codes == (ERR_SCHEMA,)
    assert result.violations[0].evidence["field"] == name


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("payment_method", "cash"),
        ("merchant_category", "casino"),
        ("status", "APPROVED"),
        ("commission_type", None),
        ("customer_type", "vip"),
        ("risk_level", 0),
        ("risk_level", 6),
        ("risk_level", 2.5),
        ("risk_level", True),
    ],
)
def test_enum_and_risk_level_violations(name: str, bad: Any) -> None:
    result = check(orjson.dumps(event(**{name: bad})), INGEST_MS)
    assert result.codes == (ERR_SCHEMA,)
    assert result.violations[0].evidence["field"] == name


def test_every_rule_is_judged_and_errors_accumulate() -> None:
    bad = event(
        merchant_id=None,
        payment_method="mobile",
        device_info={},
        total_amount=1,
        timestamp="2030-01-01T00:00:00Z",
    )
    assert sorted(codes(bad)) == sorted([ERR_SCHEMA, ERR_AMOUNT, ERR_TIME, ERR_DEVICE])


def test_unknown_extra_fields_are_allowed() -> None:
    assert codes(event(loyalty_points=12, extra={"x": [1, 2]})) == []


# -- fast path agrees with the full judgement ---------------------------------
def test_fast_path_never_accepts_what_the_full_check_rejects() -> None:
    rng = random.Random(7)
    mutations: list[dict[str, Any]] = [
        {},
        {"total_amount": 1},
        {"amount": "5"},
        {"amount": -1, "total_amount": 390354 - 351671 - 1},
        {"timestamp": "2025-04-26T12:19:10"},
        {"timestamp": "2031-01-01T00:00:00Z"},
        {"timestamp": "2025-04-20T00:00:00Z"},
        {"payment_method": "mobile"},
        {"payment_method": "mobile", "device_info": {"os": "iOS"}},
        {"risk_level": 9},
        {"status": "x"},
        {"customer_id": 1},
        {"risk_level": True},
        {"risk_level": 3.0},
        {"transaction_id": ""},
        {"device_info": "iOS", "payment_method": "mobile"},
        {"device_info": {"os": 1}, "payment_method": "mobile"},
        {"location": "here"},
        {"timestamp": "2025-04-26t12:19:10z"},
        {"timestamp": 1745669950},
        {"amount": 351671.0},
        {"status": {}},
        {"payment_method": []},
        {"payment_method": "mobile", "device_info": {"os": ["iOS"]}},
    ]
    seen_fast = 0
    for _ in range(500):
        rec = event(**rng.choice(mutations))
        full = check_record(rec, INGEST_MS)
        if decode_plain(orjson.dumps(rec), INGEST_MS) is not None:
            seen_fast += 1
            assert full.valid, rec
    assert seen_fast > 0
    assert decode_plain(orjson.dumps(event()), INGEST_MS) is not None
    assert decode_plain(b"[" * 100_000, INGEST_MS) is None
    assert decode_plain(b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}", INGEST_MS) is None
    assert decode_plain(orjson.dumps(event(total_amount=1)), INGEST_MS) is None


# -- error records ------------------------------------------------------------
def test_error_records_carry_evidence_source_and_key() -> None:
    result = check(orjson.dumps(event(total_amount=1, payment_method="mobile")), INGEST_MS)
    records = error_records(result, Source("darooghe.transactions", 2, 41, INGEST_MS))
    assert len(records) == 2
    key, value = records[0]
    assert key == b"99df9fd3-5866-4137-a94c-74f396ed1783"
    body = orjson.loads(value)
    assert body["error_code"] == ERR_AMOUNT and body["actual_total"] == 1
    assert body["source"] == {
        "topic": "darooghe.transactions",
        "partition": 2,
        "offset": 41,
        "timestamp": ms_to_iso(INGEST_MS),
        "timestamp_ms": INGEST_MS,
    }
    assert orjson.loads(records[1][1])["device_os"] is None


def test_error_record_of_garbage_has_null_transaction_id_and_excerpt() -> None:
    [(key, value)] = error_records(check(b"\xffgarbage", INGEST_MS), Source("t", 0, 0, INGEST_MS))
    body = orjson.loads(value)
    assert key is None and body["transaction_id"] is None and body["excerpt"] == "\\xffgarbage"


def test_valid_message_has_no_records() -> None:
    assert error_records(check(orjson.dumps(event()), INGEST_MS), Source("t", 0, 0, INGEST_MS)) == []


def test_fast_path_enums_are_the_schema_enums() -> None:
    hints = typing.get_type_hints(PlainTransaction, include_extras=False)
    for name, allowed in ENUM_FIELDS.items():
        assert typing.get_args(hints[name]) == allowed, name


def test_fast_path_carries_the_parsed_timestamp() -> None:
    tx = decode_plain(orjson.dumps(event(timestamp_ms=5)), INGEST_MS)
    assert tx is not None and tx.timestamp_ms == parse_timestamp("2025-04-26T12:19:10.304293Z")


def _exact_iso(ms: int) -> str | None:
    try:
        return (
            (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
    except OverflowError:
        return None


@given(st.integers(min_value=-(10**20), max_value=10**20), st.integers(0, 999))
def test_ms_to_iso_is_the_exact_utc_time_or_none_beyond_the_calendar(ms: int, other_millis: int) -> None:
    assert ms_to_iso(ms) == _exact_iso(ms)
    same_second = ms - ms % 1000 + other_millis  # formatted from the text kept of the last second
    assert ms_to_iso(same_second) == _exact_iso(same_second)
