"""What the viewer asked to see, as it lives in the URL query: pure, no Streamlit.

`Filters` (merchants, categories, payment methods, statuses, validity, time
window) selects rows of a buffer snapshot; `Display` (refresh period, pause,
kiosk) says how to show them. Both parse from and serialise to query
parameters, so `?merchant=merch_7&merchant=merch_12&window=15m` is a
bookmarkable view. Parsing never raises: an unknown value is dropped and a
bad scalar falls back to its default.

The time window is relative to now and judged by each message's Kafka
timestamp (ingestion time), which every row has, even an undecodable one.
The default window is "all" (everything buffered): backfilled history carries
old Kafka timestamps, and a short default would hide it behind an empty page;
a wall screen picks its window in its URL (`?window=15m`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from dashboard.core.schema import MERCHANT_CATEGORIES, PAYMENT_METHODS, STATUSES
from dashboard.store.buffer import MAX_STRING_CHARS, Snapshot

#: Window name -> length in ms (None: everything buffered), in menu order.
WINDOWS: dict[str, int | None] = {
    "5m": 5 * 60_000,
    "15m": 15 * 60_000,
    "1h": 60 * 60_000,
    "24h": 24 * 60 * 60_000,
    "all": None,
}
WINDOW_LABELS: dict[str, str] = {
    "5m": "Last 5 minutes",
    "15m": "Last 15 minutes",
    "1h": "Last hour",
    "24h": "Last 24 hours",
    "all": "Everything buffered",
}
DEFAULT_WINDOW = "all"
VALIDITIES = ("all", "valid", "invalid")
MAX_MERCHANTS = 200  # selected merchants kept from a URL
MAX_MERCHANT_CHARS = MAX_STRING_CHARS  # a longer id cannot match: the buffer cuts strings there
REFRESH_RANGE = (0.5, 300.0)  # seconds, as Settings.refresh_seconds
_TRUE = frozenset({"1", "true", "yes", "on"})

#: Query parameter names, one per field.
Q_MERCHANT, Q_CATEGORY, Q_METHOD, Q_STATUS = "merchant", "category", "method", "status"
Q_VALIDITY, Q_WINDOW, Q_REFRESH, Q_PAUSED, Q_KIOSK = "validity", "window", "refresh", "paused", "kiosk"
QUERY_KEYS = (Q_MERCHANT, Q_CATEGORY, Q_METHOD, Q_STATUS, Q_VALIDITY, Q_WINDOW, Q_REFRESH, Q_PAUSED, Q_KIOSK)


class MultiQuery(Protocol):
    """Anything with `get_all(key) -> list[str]`, like `st.query_params`."""

    def get_all(self, key: str) -> list[str]: ...


Query = MultiQuery | Mapping[str, str | list[str]]
QueryDict = dict[str, str | list[str]]


def get_all(query: Query, key: str) -> list[str]:
    """Return every value of `key` in `query` (a `get_all` object or a plain mapping)."""
    if hasattr(query, "get_all"):  # st.query_params is a Mapping too, whose get() keeps only the last value
        return list(query.get_all(key))
    assert isinstance(query, Mapping)
    value = query.get(key)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _choices(values: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
    """Return the allowed values among `values`, deduplicated, in the order of `allowed`."""
    wanted = set(values)
    return tuple(v for v in allowed if v in wanted)


def _merchants(values: Iterable[str]) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for v in values:
        if v and len(v) <= MAX_MERCHANT_CHARS and len(out) < MAX_MERCHANTS:
            out[v] = None
    return tuple(out)


def _last(query: Query, key: str) -> str | None:
    values = get_all(query, key)
    return values[-1].strip() if values else None


@dataclass(frozen=True)
class Filters:
    """Row selection; an empty tuple means "any"."""

    merchants: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    validity: str = "all"
    window: str = DEFAULT_WINDOW

    @classmethod
    def from_query(cls, query: Query) -> Filters:
        """Parse query parameters; unknown values are dropped, bad scalars become defaults."""
        validity = _last(query, Q_VALIDITY)
        window = _last(query, Q_WINDOW)
        return cls(
            merchants=_merchants(get_all(query, Q_MERCHANT)),
            categories=_choices(get_all(query, Q_CATEGORY), MERCHANT_CATEGORIES),
            methods=_choices(get_all(query, Q_METHOD), PAYMENT_METHODS),
            statuses=_choices(get_all(query, Q_STATUS), STATUSES),
            validity=validity if validity in VALIDITIES else "all",
            window=window if window in WINDOWS else DEFAULT_WINDOW,
        )

    def to_query(self) -> QueryDict:
        """Return the query parameters of these filters, defaults left out."""
        out: QueryDict = {}
        for key, values in (
            (Q_MERCHANT, self.merchants),
            (Q_CATEGORY, self.categories),
            (Q_METHOD, self.methods),
            (Q_STATUS, self.statuses),
        ):
            if values:
                out[key] = list(values)
        if self.validity != "all":
            out[Q_VALIDITY] = self.validity
        if self.window != DEFAULT_WINDOW:
            out[Q_WINDOW] = self.window
        return out

    @property
    def window_ms(self) -> int | None:
        """Length of the time window in ms, None for everything buffered."""
        return WINDOWS[self.window]

    def window_start_ms(self, now_ms: int) -> int | None:
        """First Kafka timestamp (inclusive) inside the window, None for everything buffered."""
        length = self.window_ms
        return None if length is None else now_ms - length

    def mask(self, snapshot: Snapshot, now_ms: int) -> np.ndarray:
        """Return a boolean mask over the snapshot's rows that pass every filter.

        Works on integer codes and numbers only (no string comparisons): a
        selected value missing from the snapshot's dictionary matches nothing.
        """
        mask = np.ones(len(snapshot), dtype=bool)
        start = self.window_start_ms(now_ms)
        if start is not None:
            mask &= snapshot.numeric["kafka_ts_ms"] >= start
        for column, wanted in (
            ("merchant_id", self.merchants),
            ("merchant_category", self.categories),
            ("payment_method", self.methods),
            ("status", self.statuses),
        ):
            if wanted:
                mask &= code_lookup(snapshot.dictionaries[column], wanted)[snapshot.codes[column]]
        if self.validity != "all":
            valid = snapshot.numeric["error_mask"] == 0
            mask &= valid if self.validity == "valid" else ~valid
        return mask


def code_lookup(dictionary: tuple[str, ...], wanted: Iterable[str]) -> np.ndarray:
    """Return a boolean table over a column's codes, True for the codes of `wanted` values."""
    table = np.zeros(len(dictionary), dtype=bool)
    wanted_set = set(wanted)
    for code, value in enumerate(dictionary):
        if value in wanted_set:
            table[code] = True
    return table


@dataclass(frozen=True)
class Display:
    """How to show the data: auto-refresh period, pause, wall-screen (kiosk) mode."""

    refresh_seconds: float
    paused: bool = False
    kiosk: bool = False

    @classmethod
    def from_query(cls, query: Query, default_refresh: float) -> Display:
        """Parse query parameters; `refresh` is clamped to 0.5-300 s, flags accept 1/true/yes/on."""
        refresh = default_refresh
        text = _last(query, Q_REFRESH)
        if text:
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if math.isfinite(value):
                refresh = min(max(value, REFRESH_RANGE[0]), REFRESH_RANGE[1])
        return cls(
            refresh_seconds=refresh,
            paused=(_last(query, Q_PAUSED) or "").lower() in _TRUE,
            kiosk=(_last(query, Q_KIOSK) or "").lower() in _TRUE,
        )

    def to_query(self, default_refresh: float) -> QueryDict:
        """Return the query parameters of this display, defaults left out."""
        out: QueryDict = {}
        if self.refresh_seconds != default_refresh:
            out[Q_REFRESH] = f"{self.refresh_seconds:g}"
        if self.paused:
            out[Q_PAUSED] = "1"
        if self.kiosk:
            out[Q_KIOSK] = "1"
        return out

    @property
    def run_every(self) -> float | None:
        """The fragment period: None (no auto-refresh) when paused."""
        return None if self.paused else self.refresh_seconds


def normalise(query: Query) -> dict[str, tuple[str, ...]]:
    """Return our keys of `query` as comparable tuples (absent keys left out)."""
    return {key: tuple(values) for key in QUERY_KEYS if (values := get_all(query, key))}
