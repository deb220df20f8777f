"""Property tests: whatever bytes a message holds, every reader judges it, none raises, every record is bounded.

Arbitrary bytes, structure-aware mutations of a valid event (tests/hostile.py)
and the fixed hostile corpus go through the full check, the fast path (they
must agree), the worker's transform, the dashboard's decoder, the page helper
that renders a message and peek's summary. A few hundred examples each.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dashboard.core.records import MAX_KEY_BYTES, MAX_RECORD_BYTES, encode_record
from dashboard.core.schema import ERR_SCHEMA, ERR_TIME, ERROR_CODES
from dashboard.core.validation import check, decode_plain, judge
from dashboard.fraud import FraudDetector
from dashboard.ingest.transform import transform
from dashboard.peek import Summary, describe
from dashboard.store.buffer import codes_of
from dashboard.store.decode import RawMessage, to_batch
from dashboard.views.message import message_view
from tests.hostile import NOW_MS, SPECIAL_VALUES, WHOLE_MESSAGES, event, messages, with_raw

SKEW = 1_000
TOPIC = "darooghe.transactions"
HOSTILE = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every CI run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def assert_bounded(records: list[tuple[bytes | None, bytes]], offset: int) -> list[dict[str, object]]:
    """Every record is a JSON object of at most 64 KB naming its source offset; return them decoded."""
    out = []
    for key, value in records:
        assert len(value) <= MAX_RECORD_BYTES
        assert key is None or len(key) <= MAX_KEY_BYTES
        record = orjson.loads(value)
        assert isinstance(record, dict)
        assert record["source"]["offset"] == offset
        out.append(record)
    return out


@HOSTILE
@given(messages)
def test_judge_never_raises_and_the_fast_path_agrees_with_the_full_check(value: bytes | None) -> None:
    tx, checked = judge(value, NOW_MS, SKEW)
    assert (tx is None) != (checked is None)  # exactly one judgement
    full = check(value, NOW_MS, SKEW)
    plain = decode_plain(value, NOW_MS, SKEW) if value else None
    if plain is not None:
        assert full.valid, full.violations  # the fast path never passes what the full check refuses
        assert full.transaction is not None and full.transaction.timestamp_ms == plain.timestamp_ms
    else:
        # The whole judgement, not only its codes: check_plain builds it from the decoded struct.
        assert checked == full
    assert set(full.codes) <= set(ERROR_CODES)


@HOSTILE
@given(messages, st.integers(0, 2**40), st.booleans())
def test_transform_yields_bounded_records_at_the_messages_offset(value: bytes | None, offset: int, fraud: bool) -> None:
    detector = FraudDetector() if fraud else None
    out = transform(detector, value, TOPIC, 1, offset, NOW_MS, SKEW)
    full = check(value, NOW_MS, SKEW)
    if full.valid:
        assert out is None or not out.errors
    else:
        assert out is not None and out.codes == full.codes
        records = assert_bounded(out.errors, offset)
        assert [r["error_code"] for r in records] == list(full.codes)  # one record per broken rule
    if out is not None:
        assert_bounded(out.alerts, offset)


@HOSTILE
@given(st.lists(messages, min_size=1, max_size=4))
def test_the_dashboard_decoder_gives_every_message_one_row(values: list[bytes | None]) -> None:
    batch = to_batch([RawMessage(v, NOW_MS, 0, i) for i, v in enumerate(values)], SKEW)
    assert len(batch) == len(values)
    masks = batch.numeric["error_mask"]
    for i, v in enumerate(values):
        assert codes_of(int(masks[i])) == sorted(set(check(v, NOW_MS, SKEW).codes), key=ERROR_CODES.index)


@HOSTILE
@given(messages)
def test_the_message_view_and_peek_never_raise(value: bytes | None) -> None:
    view = message_view(value, NOW_MS, SKEW)
    assert view.valid == check(value, NOW_MS, SKEW).valid
    if view.json is not None:
        orjson.dumps(view.json)  # what the page hands to st.json is plain JSON
    else:
        assert view.text
    summary = Summary()
    checked = check(value, NOW_MS, SKEW)
    summary.add(checked)
    describe(value, checked)
    summary.render()


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    st.recursive(
        st.none() | st.integers() | st.floats() | st.text(max_size=50),
        lambda x: st.lists(x, max_size=5) | st.dictionaries(st.text(max_size=10), x, max_size=5),
        max_leaves=20,
    )
)
@example({"s": "\ud800" * 10, "n": 2**200, "big": "x" * 200_000})
@example({"deep": [[[[[[[[[[[[["x" * 100_000]]]]]]]]]]]]]})
def test_encode_record_is_bounded_json_for_any_content(content: object) -> None:
    data = encode_record({"error_code": ERR_SCHEMA, "evidence": content, "source": {"offset": 1}})
    assert len(data) <= MAX_RECORD_BYTES
    assert orjson.loads(data)["error_code"] == ERR_SCHEMA


# --- the rules the issue names, one example each --------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (SPECIAL_VALUES["i64 max + 1"], "signed 64-bit"),
        (SPECIAL_VALUES["u64 max + 1"], "signed 64-bit"),  # orjson reads it as a float: still out of range
        (SPECIAL_VALUES["persian digits"], "plain numeric string"),
        (SPECIAL_VALUES["full-width digits"], "plain numeric string"),
        (SPECIAL_VALUES["underscore number"], "plain numeric string"),
        (SPECIAL_VALUES["spaced number"], "plain numeric string"),
        (SPECIAL_VALUES["31-char number"], "plain numeric string"),
    ],
)
def test_numbers_out_of_range_and_unusual_numeric_strings_are_schema_errors_naming_the_field(
    raw: bytes, why: str
) -> None:
    checked = check(with_raw("vat_amount", raw), NOW_MS)
    assert ERR_SCHEMA in checked.codes
    schema = next(v for v in checked.violations if v.code == ERR_SCHEMA)
    assert schema.evidence["field"] == "vat_amount" and why in schema.message


def test_plain_numeric_strings_are_numbers() -> None:
    ev = event()
    for text in ("+7033", "7033", "7033.0"):
        assert check(with_raw("commission_amount", orjson.dumps(text), ev), NOW_MS).valid, text


@pytest.mark.parametrize("raw", [b'"9999-12-31T23:59:59-14:00"', b'"0001-01-01T00:00:00+14:00"', b"1e20", b"-1e20"])
def test_timestamps_that_overflow_when_converted_are_unparsable_time_errors(raw: bytes) -> None:
    checked = check(with_raw("timestamp", raw), NOW_MS)
    assert checked.codes == (ERR_TIME,)
    assert checked.violations[0].message == "invalid timestamp format"


def test_the_issues_poison_messages_are_judged() -> None:
    poison = WHOLE_MESSAGES["issue's 26 bytes"]
    assert check(poison, NOW_MS).codes == (ERR_SCHEMA,)
    out = transform(FraudDetector(), WHOLE_MESSAGES["u64 amount, consistent total"], TOPIC, 0, 7, NOW_MS, SKEW)
    assert out is not None and out.codes and all(c == ERR_SCHEMA for c in out.codes)
    assert_bounded(out.errors, 7)


def test_an_unexpected_exception_becomes_one_schema_record_and_processing_goes_on() -> None:
    class Broken(FraudDetector):
        def observe_fields(self, *fields: object) -> list:  # type: ignore[override]
            raise ZeroDivisionError("a bug in a rule")

    out = transform(Broken(), orjson.dumps(event()), TOPIC, 2, 41, NOW_MS, SKEW)
    assert out is not None and out.codes == (ERR_SCHEMA,)
    (record,) = assert_bounded(out.errors, 41)
    assert "ZeroDivisionError" in str(record["message"]) and "a bug in a rule" in str(record["message"])
    assert record["exception"] == "ZeroDivisionError" and record["payload_bytes"] == len(orjson.dumps(event()))
    assert str(record["excerpt"]).startswith('{"transaction_id"')
