"""Bounded JSON records: whatever a message held, its error record or alert encodes to at most 64 KB. Pure.

Records quote message content (ids, excerpts, reprs, evidence). A hostile
message can make that content huge (a 1 MB merchant id), unencodable (an
integer beyond 64 bits in a computed total) or both. `encode_record` encodes
the common, small record at orjson speed and only then, if it failed or came
out too large, clamps: long strings are cut with their original length noted,
integers beyond 64 bits become strings, nesting is cut, and as a last resort
the record keeps only its identifying fields. It never raises.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

#: Largest encoded record (value bytes) the worker ever produces.
MAX_RECORD_BYTES: Final = 64 * 1024
#: Longest string kept whole inside a clamped record, in characters.
CLAMP_CHARS: Final = 1000
#: Longest record key, in bytes (keys are ids; they only steer partitioning).
MAX_KEY_BYTES: Final = 256
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
_MAX_DEPTH = 8
_MAX_ITEMS = 64
#: Fields a record keeps when even the clamped form is too large.
_IDENTITY = ("error_code", "rule", "message", "transaction_id", "customer_id", "source")


def clip(text: str, limit: int = CLAMP_CHARS) -> str:
    """Return `text`, or its first `limit` characters and a note of its full length when longer."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [truncated, {len(text)} characters in all]"


def safe_text(text: str, limit: int = CLAMP_CHARS) -> str:
    """Return `text` clipped to `limit` characters, lone surrogates escaped so it encodes as UTF-8."""
    text = clip(text, limit)
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def show(value: Any, limit: int = 120) -> str:
    """Return a short repr of a message value for a human message; never raises, never long."""
    try:
        if isinstance(value, str):
            return repr(clip(value, limit))
        return clip(repr(value), limit)
    except Exception:  # repr of a hostile value (an int beyond the digit limit, say)
        return f"<{type(value).__name__}>"


def record_key(text: str | None) -> bytes | None:
    """Return the UTF-8 key for an id, cut to MAX_KEY_BYTES, surrogates escaped (None passes through)."""
    if not text:
        return None
    return text.encode("utf-8", "backslashreplace")[:MAX_KEY_BYTES]


def _clamp(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else clip(show(value, CLAMP_CHARS))
    if depth >= _MAX_DEPTH:
        return show(value)
    if isinstance(value, dict):
        items = list(value.items())
        out = {safe_text(str(k), 200): _clamp(v, depth + 1) for k, v in items[:_MAX_ITEMS]}
        if len(items) > _MAX_ITEMS:
            out["truncated_items"] = len(items)
        return out
    if isinstance(value, list | tuple):
        out_list = [_clamp(v, depth + 1) for v in value[:_MAX_ITEMS]]
        if len(value) > _MAX_ITEMS:
            out_list.append(f"... [truncated, {len(value)} items in all]")
        return out_list
    return show(value)


def encode_record(record: dict[str, Any]) -> bytes:
    """Encode `record` as JSON of at most MAX_RECORD_BYTES; clamp its content only when it must. Never raises."""
    try:
        data = orjson.dumps(record)
        if len(data) <= MAX_RECORD_BYTES:
            return data
    except Exception:  # unencodable content: clamp it below
        pass
    try:
        data = orjson.dumps(_clamp(record, 0))
        if len(data) <= MAX_RECORD_BYTES:
            return data
        small = {k: _clamp(record[k], _MAX_DEPTH - 2) for k in _IDENTITY if k in record}
        small["truncated"] = f"record of {len(data)} bytes cut to its identifying fields"
        data = orjson.dumps(small)
        if len(data) <= MAX_RECORD_BYTES:
            return data
    except Exception:  # pragma: no cover - _clamp yields only encodable values; kept so this cannot raise
        pass
    code = record.get("error_code")
    return orjson.dumps({"error_code": code[:40] if isinstance(code, str) else None, "truncated": "unencodable record"})
