"""Hostile messages: a fixed corpus of named shapes, and Hypothesis strategies that mutate a valid event.

The corpus feeds the real-broker and browser tests (`between_canaries` puts
each message between two canaries); the strategies feed the property tests.
Messages are built as raw JSON bytes, so they can hold what no Python value
serialises to: numbers of 100,000 digits, NaN, lone surrogate escapes,
invalid UTF-8 inside strings and keys, duplicate keys.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from hypothesis import strategies as st

from tests.synthetic import XSS, example_event

NOW_MS = int(time.time() * 1000) - 60_000  # a minute ago: a Kafka timestamp the broker accepts
#: A transaction id that runs script if a page ever treats message content as HTML.
SCRIPT = "<script>window.__darooghe_injected = 1</script>"


def iso(ms: int) -> str:
    """ISO-8601 UTC with milliseconds and a Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def event(ts_ms: int = NOW_MS, **changes: Any) -> dict[str, Any]:
    """A valid transaction at `ts_ms` (event time = Kafka time), with `changes` applied.

    DATA.md's example (tests/synthetic.example_event), paid by mobile with an Android device.
    """
    device = {"os": "Android", "app_version": "2.4.1", "device_model": "Samsung Galaxy S25"}
    return example_event(**{"timestamp": iso(ts_ms), "payment_method": "mobile", "device_info": device, **changes})


def raw_object(fields: dict[str, bytes]) -> bytes:
    """A JSON object from already-encoded keys' values: {"k": <raw bytes>, ...}."""
    return b"{" + b",".join(orjson.dumps(k) + b":" + v for k, v in fields.items()) + b"}"


def with_raw(field: str, raw: bytes, base: dict[str, Any] | None = None) -> bytes:
    """The valid event with `field` (a.b for nested) set to the raw JSON bytes `raw`."""
    ev = base if base is not None else event()
    fields = {k: orjson.dumps(v) for k, v in ev.items()}
    if "." in field:
        outer, inner = field.split(".", 1)
        sub = {k: orjson.dumps(v) for k, v in (ev.get(outer) or {}).items()}
        sub[inner] = raw
        fields[outer] = raw_object(sub)
    else:
        fields[field] = raw
    return raw_object(fields)


FIELDS = [*event().keys(), "location.lat", "location.lng", "device_info.os"]

#: Raw JSON values that break something, by name.
SPECIAL_VALUES: dict[str, bytes] = {
    "u64 max": b"18446744073709551615",
    "u64 max + 1": b"18446744073709551616",
    "i64 max": b"9223372036854775807",
    "i64 max + 1": b"9223372036854775808",
    "i64 min - 1": b"-9223372036854775809",
    "1000 digits": b"9" * 1000,
    "100000 digits": b"9" * 100_000,
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "1e400": b"1e400",
    "-0.0": b"-0.0",
    "5e-324": b"5e-324",
    "lone surrogate": b'"\\ud800"',
    "invalid utf-8 in string": b'"t\xff"',
    "overlong utf-8": b'"\xc0\xaf"',
    "encoded surrogate": b'"\xed\xa0\x80"',
    "NUL escape": b'"a\\u0000b"',
    "raw NUL": b'"a\x00b"',
    "1 MB string": b'"' + b"x" * 1_000_000 + b'"',
    "nested 50000 deep": b"[" * 50_000 + b"]" * 50_000,
    "nested 1000 deep": b"[" * 1000 + b"]" * 1000,
    "persian digits": '"۱۲۳۴"'.encode(),
    "full-width digits": '"１２３"'.encode(),
    "underscore number": b'"1_000"',
    "spaced number": b'" 1000 "',
    "two points": b'"1.2.3"',
    "31-char number": b'"' + b"1" * 31 + b'"',
    "signed numeric string": b'"+351671"',
    "impossible date": b'"2025-02-30T00:00:00Z"',
    "year 9999 at -14:00": b'"9999-12-31T23:59:59-14:00"',
    "year 1 at +14:00": b'"0001-01-01T00:00:00+14:00"',
    "epoch 1e20": b"1e20",
    "epoch -1e20": b"-1e20",
    "bool": b"true",
    "null": b"null",
    "empty object": b"{}",
    "list": b"[1,2,3]",
}

#: Whole messages that break something, by name (None is a tombstone).
WHOLE_MESSAGES: dict[str, bytes | None] = {
    "issue's 26 bytes": b'{"transaction_id":"t\xff"}',
    "u64 amount, consistent total": orjson.dumps(
        event(amount=18446744073709551615 - 100, vat_amount=50, commission_amount=50, total_amount=18446744073709551615)
    ),
    "tombstone": None,
    "empty": b"",
    "bare string": b'"just a string"',
    "bare number": b"42",
    "null": b"null",
    "array": b"[1, 2]",
    "BOM": b"\xef\xbb\xbf" + orjson.dumps(event()),
    "not JSON": b"\xff\xfe\x00garbage",
    "truncated": orjson.dumps(event())[:-7],
    "duplicate keys": orjson.dumps(event())[:-1] + b',"amount":-1}',
    "invalid utf-8 in a key": raw_object({"transaction_id": b'"x"'})[:-1] + b',"k\xff":1}',
    "deep nesting": b'{"x":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "900 KB of x": b"x" * 900_000,
    "500 KB merchant id": orjson.dumps(event(merchant_id="m" * 500_000)),
    "1 MB ids, valid": orjson.dumps(event(transaction_id="t" * 300_000, customer_id="c" * 300_000)),
    "huge evidence": orjson.dumps(event(timestamp="x" * 400_000, payment_method="y" * 200_000)),
}
WHOLE_MESSAGES.update({f"{name} in {field}": with_raw(field, raw) for name, raw in SPECIAL_VALUES.items()
                       for field in ("amount", "timestamp")})  # fmt: skip
WHOLE_MESSAGES.update({
    "NaN lat": with_raw("location.lat", b"NaN"),
    "1e400 lat": with_raw("location.lat", b"1e400"),
    "surrogate customer": with_raw("customer_id", b'"\\udc00x"'),
    "overlong utf-8 id": with_raw("transaction_id", b'"\xc0\xaf"'),
    "epoch timestamp far": with_raw("timestamp", b"100000000000000000000"),
})  # fmt: skip
# Last, so a dashboard (which keeps only the latest raw payloads) still has its message to show.
WHOLE_MESSAGES["HTML in ids, valid"] = orjson.dumps(event(merchant_id=XSS, transaction_id=SCRIPT))


def canary(i: int, ts_ms: int = NOW_MS) -> bytes:
    """Valid JSON with a broken total (one ERR_AMOUNT record), transaction id canary-<i>, customer canary_<i>."""
    return orjson.dumps(event(ts_ms, transaction_id=f"canary-{i}", customer_id=f"canary_{i}", total_amount=1))


def between_canaries(ts_ms: int = NOW_MS) -> list[bytes | None]:
    """The corpus for one partition: WHOLE_MESSAGES' i-th message at offset 3i+1, canaries 2i and 2i+1 around it."""
    values: list[bytes | None] = []
    for i, message in enumerate(WHOLE_MESSAGES.values()):
        values += [canary(2 * i, ts_ms), message, canary(2 * i + 1, ts_ms)]
    return values


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)  # fmt: skip


def _encoded(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # an int beyond 64 bits: write it out as JSON does
        return str(value).encode()


raw_values = st.one_of(st.sampled_from(list(SPECIAL_VALUES.values())), json_values.map(_encoded))


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event with one to three fields (or a new key) given hostile raw values, maybe framed oddly."""
    ev = event()
    fields = {k: orjson.dumps(v) for k, v in ev.items() if not isinstance(v, dict)}
    nested = {k: {ik: orjson.dumps(iv) for ik, iv in v.items()} for k, v in ev.items() if isinstance(v, dict)}
    for _ in range(draw(st.integers(1, 3))):
        field, raw = draw(st.sampled_from([*FIELDS, "extra"])), draw(raw_values)
        if "." in field:
            outer, inner = field.split(".", 1)
            nested.setdefault(outer, {})[inner] = raw
            fields.pop(outer, None)
        else:
            fields[field] = raw
            nested.pop(field, None)
    message = raw_object({**fields, **{k: raw_object(v) for k, v in nested.items()}})
    frame = draw(st.sampled_from(["", "bom", "dup", "truncate", "key-bytes"]))
    if frame == "bom":
        message = b"\xef\xbb\xbf" + message
    elif frame == "dup":
        key = draw(st.sampled_from(FIELDS)).split(".")[0].encode()
        message = message[:-1] + b',"' + key + b'":' + draw(raw_values) + b"}"
    elif frame == "truncate":
        message = message[: draw(st.integers(0, len(message)))]
    elif frame == "key-bytes":
        message = message[:-1] + b',"' + draw(st.binary(max_size=8)).replace(b'"', b"") + b'":1}'
    return message


#: Any message value: arbitrary bytes, a mutated event, a corpus message or a tombstone.
messages = st.one_of(
    st.binary(max_size=300),
    mutated_events(),
    st.sampled_from(list(WHOLE_MESSAGES.values())),
)
