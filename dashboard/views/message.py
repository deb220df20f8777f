"""How the pages show one raw message: as JSON when it safely can be, else as escaped text. Pure.

A message is data from anyone: it may be huge, nested a thousand deep, hold
integers beyond what a browser's JSON keeps exactly, or not be JSON at all.
`message_view` decides, without raising, what the page renders: a parsed
JSON object or array for `st.json`, or escaped text for `st.code`, and the
rows of its validation result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from dashboard.core.records import clip, encode_record, safe_text
from dashboard.core.validation import excerpt, internal_error, judge

#: Largest message shown as an expandable JSON tree; larger ones are shown as text.
JSON_MAX_BYTES = 100_000
#: Deepest nesting shown as a JSON tree.
JSON_MAX_DEPTH = 64
#: Bytes of a message shown as text.
TEXT_BYTES = 2000
_SAFE_INT = 2**53  # beyond this a browser's JSON numbers lose digits


@dataclass(frozen=True)
class MessageView:
    """What to render: `json` (an object or array) or `text`; validity, codes and violation rows."""

    json: dict[str, Any] | list[Any] | None
    text: str
    valid: bool
    codes: tuple[str, ...]
    rows: dict[str, list[str]]


def _renderable(value: Any, depth: int = 0) -> bool:
    """True when `value` is shallow enough and its numbers survive a browser's JSON exactly."""
    if depth > JSON_MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return all(_renderable(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return all(_renderable(v, depth + 1) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -_SAFE_INT <= value <= _SAFE_INT
    return True


def message_view(value: bytes | None, kafka_ts_ms: int, skew_ms: int) -> MessageView:
    """Return how to show one message and its judgement; never raises."""
    try:
        _tx, checked = judge(value, kafka_ts_ms, skew_ms)
        parsed: Any = None
        if value and len(value) <= JSON_MAX_BYTES:
            try:
                parsed = orjson.loads(value)
                if not isinstance(parsed, dict | list) or not _renderable(parsed):
                    parsed = None
                else:
                    json.dumps(parsed)  # what st.json does with it; a failure here means: show text
            except (orjson.JSONDecodeError, ValueError, TypeError, RecursionError):
                parsed = None
        text = excerpt(value, TEXT_BYTES) or "(empty message)"
        if value and len(value) > TEXT_BYTES:
            text += f"\n... [{len(value):,} bytes in all]"
        if checked is None:
            return MessageView(parsed, text, True, (), {"code": [], "reason": [], "evidence": []})
        rows = {
            "code": [v.code for v in checked.violations],
            "reason": [safe_text(v.message) for v in checked.violations],
            "evidence": [clip(encode_record(v.evidence).decode(), 2000) for v in checked.violations],
        }
        return MessageView(parsed, text, checked.valid, checked.codes, rows)
    except Exception as exc:  # a bug: still show something, and say so
        checked = internal_error(exc, value)
        v = checked.violations[0]
        return MessageView(
            None,
            excerpt(value, TEXT_BYTES) or "(empty message)",
            False,
            checked.codes,
            {"code": [v.code], "reason": [v.message], "evidence": [str(v.evidence.get("exception"))]},
        )
