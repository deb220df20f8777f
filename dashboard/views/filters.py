"""What the viewer asked to see, as it lives in the URL query: pure, no Streamlit.

`Filters` (merchants, categories, payment methods, statuses, validity, time
window) selects rows of a buffer snapshot; `Display` (refresh period, pause,
kiosk, and the wall screen's playlist, alert time and sound) says how to show
them. Both parse from and serialise to query
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
import re
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
EVERY_RANGE = (5.0, 3600.0)  # seconds a playlist page stays
ALERT_RANGE = (1.0, 3600.0)  # seconds a wall alert banner stays
DEFAULT_EVERY, DEFAULT_ALERT_SECONDS = 30.0, 60.0
MAX_ROTATE = 20  # pages kept from a playlist
MAX_PAGE_CHARS = 40
_TRUE = frozenset({"1", "true", "yes", "on"})
_SPACE_OR_SLASH = re.compile(r"[\s/]+")
_PRINTABLE = re.compile(r"[^a-z0-9_.-]")  # what a page name may show of itself in a message

#: Query parameter names, one per field.
Q_MERCHANT, Q_CATEGORY, Q_METHOD, Q_STATUS = "merchant", "category", "method", "status"
Q_VALIDITY, Q_WINDOW, Q_REFRESH, Q_PAUSED, Q_KIOSK = "validity", "window", "refresh", "paused", "kiosk"
Q_ROTATE, Q_EVERY, Q_ALERT_SECONDS, Q_SOUND = "rotate", "every", "alert_seconds", "sound"
QUERY_KEYS = (
    Q_MERCHANT,
    Q_CATEGORY,
    Q_METHOD,
    Q_STATUS,
    Q_VALIDITY,
    Q_WINDOW,
    Q_REFRESH,
    Q_PAUSED,
    Q_KIOSK,
    Q_ROTATE,
    Q_EVERY,
    Q_ALERT_SECONDS,
    Q_SOUND,
)


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


def _seconds(query: Query, key: str, default: float, bounds: tuple[float, float]) -> float:
    """The number of seconds in `key`, clamped to `bounds`; `default` when absent or not a finite number."""
    text = _last(query, key)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        return default
    return min(max(value, bounds[0]), bounds[1]) if math.isfinite(value) else default


def _flag(query: Query, key: str) -> bool:
    return (_last(query, key) or "").lower() in _TRUE


def _page_names(query: Query) -> tuple[str, ...]:
    """The page names of every `rotate` value (comma-separated), in order, repeats kept.

    Lowercased, without spaces or slashes (`/fraud/` is `fraud`).
    At most MAX_ROTATE names of at most MAX_PAGE_CHARS characters each: a
    longer one is cut (and so names no page).
    """
    names: list[str] = []
    for value in get_all(query, Q_ROTATE):
        for part in value.split(","):
            name = _SPACE_OR_SLASH.sub("", part.lower())
            if name and len(names) < MAX_ROTATE:
                names.append(name[:MAX_PAGE_CHARS])
    return tuple(names)


@dataclass(frozen=True)
class Display:
    """How to show the data: auto-refresh period, pause, wall-screen (kiosk) mode and the wall's options.

    `rotate` is the wall's playlist as written (page URL names, unchecked:
    `playlist()` checks them against the app's pages), `every` the seconds
    each page stays, `alert_seconds` how long a fraud-alert banner stays,
    `sound` whether a new alert also beeps.
    """

    refresh_seconds: float
    paused: bool = False
    kiosk: bool = False
    rotate: tuple[str, ...] = ()
    every: float = DEFAULT_EVERY
    alert_seconds: float = DEFAULT_ALERT_SECONDS
    sound: bool = False

    @classmethod
    def from_query(cls, query: Query, default_refresh: float) -> Display:
        """Parse query parameters; never raises.

        `refresh` is clamped to 0.5-300 s, `every` to 5-3600 s (default 30),
        `alert_seconds` to 1-3600 s (default 60); a value that is not a number
        gives the default. Flags accept 1/true/yes/on.
        """
        return cls(
            refresh_seconds=_seconds(query, Q_REFRESH, default_refresh, REFRESH_RANGE),
            paused=_flag(query, Q_PAUSED),
            kiosk=_flag(query, Q_KIOSK),
            rotate=_page_names(query),
            every=_seconds(query, Q_EVERY, DEFAULT_EVERY, EVERY_RANGE),
            alert_seconds=_seconds(query, Q_ALERT_SECONDS, DEFAULT_ALERT_SECONDS, ALERT_RANGE),
            sound=_flag(query, Q_SOUND),
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
        if self.rotate:
            out[Q_ROTATE] = ",".join(self.rotate)
        if self.every != DEFAULT_EVERY:
            out[Q_EVERY] = f"{self.every:g}"
        if self.alert_seconds != DEFAULT_ALERT_SECONDS:
            out[Q_ALERT_SECONDS] = f"{self.alert_seconds:g}"
        if self.sound:
            out[Q_SOUND] = "1"
        return out

    @property
    def run_every(self) -> float | None:
        """The fragment period: None (no auto-refresh) when paused."""
        return None if self.paused else self.refresh_seconds


@dataclass(frozen=True)
class Playlist:
    """A wall's playlist checked against the app's pages: the pages to cycle through and the unknown names."""

    pages: tuple[str, ...]
    unknown: tuple[str, ...]

    def next_after(self, current: str) -> str | None:
        """The page after `current` (the first when `current` is not in the list); None for an empty list."""
        if not self.pages:
            return None
        if current not in self.pages:
            return self.pages[0]
        return self.pages[(self.pages.index(current) + 1) % len(self.pages)]

    def problem(self, known: Iterable[str]) -> str | None:
        """One line naming the unknown pages and the known ones, None when every name is known."""
        if not self.unknown:
            return None
        bad = ", ".join(repr(_PRINTABLE.sub("?", name)) for name in self.unknown)  # URL text: shown tamed
        rest = f"rotating through {', '.join(self.pages)}" if self.pages else "staying on this page"
        return f"Playlist: no page named {bad}, {rest}. Pages: {', '.join(known)}."


def playlist(rotate: Iterable[str], known: Iterable[str]) -> Playlist:
    """Split a `rotate` list into the pages among `known` (in the given order) and the unknown names."""
    names = set(known)
    pages = tuple(n for n in rotate if n in names)
    unknown = tuple(dict.fromkeys(n for n in rotate if n not in names))
    return Playlist(pages, unknown)


def normalise(query: Query) -> dict[str, tuple[str, ...]]:
    """Return our keys of `query` as comparable tuples (absent keys left out)."""
    return {key: tuple(values) for key in QUERY_KEYS if (values := get_all(query, key))}
