"""The wall screen's fraud-alert banners: which alerts are new to a screen, how long each stays, what each says. Pure.

A screen keeps a `Banners` state between runs: the alert-log total it has
looked at (`AlertLog.since`) and the time it was opened. An alert counts as
new only when the log got it after the screen's last look AND it was raised
(Kafka timestamp of the alert record) after the screen was opened, less a
small grace for clocks. A reload opens a new screen, so the alerts it showed
before are older than its opening and never come back; nor do old alerts
that a restarted server reads again from the topic.
"""

from __future__ import annotations

import io
import math
import wave
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dashboard.core.schema import FRAUD_AMOUNT, FRAUD_GEO, FRAUD_VELOCITY
from dashboard.views.fraud import evidence_text
from dashboard.views.health import duration

MAX_BANNERS = 3
GRACE_MS = 2_000  # an alert raised this long before the screen opened still counts as new (clock skew)
MAX_CUSTOMER_CHARS = 40
RULE_TITLES = {FRAUD_VELOCITY: "Velocity", FRAUD_GEO: "Impossible travel", FRAUD_AMOUNT: "Amount anomaly"}


@dataclass(frozen=True)
class Shown:
    """One alert row (as `AlertLog.since` returns it) and when this screen first showed it (epoch ms)."""

    row: Mapping[str, Any]
    since_ms: int


@dataclass(frozen=True)
class Banners:
    """What a screen has shown: the log total it has looked at, when it opened, the banners up now."""

    seen: int
    opened_ms: int
    shown: tuple[Shown, ...] = ()


def opened(total: int, now_ms: int) -> Banners:
    """The state of a screen opened at `now_ms` while the log holds `total` alerts: all of them count as shown."""
    return Banners(total, now_ms)


def _raised_ms(row: Mapping[str, Any]) -> int | None:
    value = row.get("kafka_time")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def advance(
    state: Banners,
    total: int,
    rows: Iterable[Mapping[str, Any]],
    now_ms: int,
    alert_seconds: float,
    limit: int = MAX_BANNERS,
) -> tuple[Banners, int]:
    """Take the alerts the log got since the last look (`rows`, up to `total`): the new state, how many are new.

    A banner stays `alert_seconds` from when the screen first showed it; at
    most `limit` stay up, the newest.
    """
    fresh = [
        Shown(row, now_ms)
        for row in rows
        if (raised := _raised_ms(row)) is not None and raised >= state.opened_ms - GRACE_MS
    ]
    kept = [s for s in state.shown if now_ms - s.since_ms < alert_seconds * 1000]
    shown = tuple([*kept, *fresh][-limit:]) if limit > 0 else ()
    return Banners(max(total, state.seen), state.opened_ms, shown), len(fresh)


def customer_text(customer_id: object) -> str:
    """The customer of an alert as a banner shows it: the id (already masked for viewers), cut to MAX_CUSTOMER_CHARS."""
    text = str(customer_id)
    return text if len(text) <= MAX_CUSTOMER_CHARS else text[: MAX_CUSTOMER_CHARS - 1] + "…"


def age_text(row: Mapping[str, Any], now_ms: int) -> str:
    """How long ago the alert was raised: "4 s ago", "3 min ago" ("" when its time is unknown)."""
    raised = _raised_ms(row)
    if raised is None:
        return ""
    seconds = max(0.0, (now_ms - raised) / 1000)
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{duration(seconds)} ago"


def headline(row: Mapping[str, Any], now_ms: int) -> str:
    """The banner's line of constants and numbers: rule, evidence, age (never the customer: see `customer_text`)."""
    rule = str(row.get("rule"))
    parts = [RULE_TITLES.get(rule, "Fraud alert"), evidence_text(row), age_text(row, now_ms)]
    return " · ".join(p for p in parts if p)


def tone_wav(frequency: float = 880.0, seconds: float = 0.35, rate: int = 16_000) -> bytes:
    """A short sine tone as a mono 16-bit WAV file, faded in and out (no click)."""
    n = max(1, round(seconds * rate))
    t = np.arange(n) / rate
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.02)  # 20 ms ramps
    samples = (0.6 * 32767 * fade * np.sin(2 * math.pi * frequency * t)).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return out.getvalue()
