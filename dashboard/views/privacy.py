"""Masking of customer data for viewers who are not analysts. Pure: numpy, pandas, orjson.

What a viewer sees instead of the real thing:

- a customer id becomes a pseudonym `cust_…k3q9ab`: the id's prefix up to its
  first underscore, then six characters of a keyed hash (BLAKE2b MAC) of the id under a key the
  server draws at start. The last digits of the id itself would not do: ids
  are `cust_<n>` with n below 10,000, so `cust_…303` would name most
  customers outright. The same id gets the same pseudonym everywhere (tables,
  alerts, the map, the first-seen history) for the server's lifetime, so
  counts of distinct customers and "one customer" views stay right; two
  customers whose pseudonyms collide (odds about 5 % among 10,000 customers
  that any pair does) count as one for viewers.
- a coordinate is rounded to one decimal (about 11 km: the city, not the shop);
- a raw message has its customer_id replaced by the pseudonym and its
  location rounded; a message that is not a JSON object is masked as text
  (`cust_` ids and coordinate-like numbers). The rules judge the masked
  message as they judge the real one (the ids stay non-empty strings, the
  numbers stay numbers), except that excerpts show masked text.

`MaskedSource` wraps a live source so that everything read through it (the
buffer's snapshots, the rollups) comes out masked; `mask_alerts` masks the
fraud-alert frame. The shell hands pages only those, so no page can forget.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import orjson
import pandas as pd

from dashboard.store.buffer import Categories, RingBuffer, Snapshot
from dashboard.store.rollups import RollupSnapshot
from dashboard.views import history

PSEUDONYM_CHARS = 6
COORDINATE_DECIMALS = 1
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base 32: no i, l, o, u
_PREFIX_RE = re.compile(r"[A-Za-z]{1,12}_")
_TEXT_ID_RE = re.compile(rb"cust_[A-Za-z0-9_-]+")
_TEXT_COORDINATE_RE = re.compile(rb"(?<![\d.])-?\d{1,3}\.\d{2,}(?![\d.])")
MASKED = {"masked": True}  # stands for a customer_id or location that is not of the usual shape


def pseudonym(value: str, key: bytes) -> str:
    """Return the masked form of a customer id (`cust_…` and six characters); "" stays "" (missing)."""
    if not value:
        return ""
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), key=key, digest_size=8).digest()  # a keyed MAC
    number = int.from_bytes(digest, "big")
    chars = "".join(_ALPHABET[(number >> (5 * i)) & 31] for i in range(PSEUDONYM_CHARS))
    prefix = _PREFIX_RE.match(value)
    return f"{prefix.group(0) if prefix else ''}…{chars}"


def round_coordinates(values: np.ndarray) -> np.ndarray:
    """Return coordinates rounded to COORDINATE_DECIMALS (NaN stays NaN), read-only, same dtype."""
    out = np.round(values, COORDINATE_DECIMALS).astype(values.dtype, copy=False)
    out.flags.writeable = False
    return out


def _round_number(value: object) -> object:
    """A coordinate as JSON holds it, rounded; a non-number is not a coordinate and is masked whole."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value  # whole degrees: coarser than a city already
    if isinstance(value, float):
        return round(value, COORDINATE_DECIMALS) if math.isfinite(value) else value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return "…"
        return f"{number:.{COORDINATE_DECIMALS}f}" if math.isfinite(number) else value
    return MASKED


def mask_text(value: bytes, key: bytes) -> bytes:
    """Mask `cust_` ids and coordinate-like decimals (two or more places) anywhere in some bytes."""
    ids = _TEXT_ID_RE.sub(lambda m: pseudonym(m.group(0).decode(), key).encode(), value)
    return _TEXT_COORDINATE_RE.sub(lambda m: f"{float(m.group(0)):.{COORDINATE_DECIMALS}f}".encode(), ids)


def mask_payload(value: bytes | None, key: bytes) -> bytes | None:
    """Return a raw message with its customer id and location masked (see the module docstring).

    A JSON object keeps every other field as it was; its `customer_id` (a
    non-empty string) becomes the pseudonym, any other non-null value
    `{"masked": true}`; `location.lat`/`lng` are rounded. Anything else is
    masked as text.
    """
    if not value:
        return value
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return mask_text(value, key)
    if not isinstance(record, dict):
        return mask_text(value, key)
    if "customer_id" in record:
        cid = record["customer_id"]
        if isinstance(cid, str):
            record["customer_id"] = pseudonym(cid, key)
        elif cid is not None:
            record["customer_id"] = MASKED
    location = record.get("location")
    if isinstance(location, dict):  # lat and lng rounded; anything else there (an address?) hidden
        record["location"] = {k: _round_number(v) if k in ("lat", "lng") else "…" for k, v in location.items()}
    elif location is not None:
        record["location"] = MASKED
    # Ids may hide in other fields of a hostile message: mask them as text too.
    # The structure stays JSON (ids are replaced inside strings only).
    return _TEXT_ID_RE.sub(lambda m: pseudonym(m.group(0).decode(), key).encode(), orjson.dumps(record))


class Labels:
    """Pseudonyms of a dictionary's values, extended as the dictionary grows (dictionaries only append).

    `of(values)` returns the distinct pseudonyms (first-seen order) and, per
    value, its index among them: colliding pseudonyms merge (see the module
    docstring); "" stays "" at index 0.
    """

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._reset()

    def _reset(self) -> None:
        self._values: tuple[str, ...] = ()
        self._labels: list[str] = []
        self._index: dict[str, int] = {}
        self._remap: list[int] = []
        self._categories = Categories(())

    def of(self, values: tuple[str, ...]) -> tuple[Categories, np.ndarray]:
        """Return (distinct pseudonyms, index of each value's pseudonym)."""
        done = len(self._values)
        if values is not self._values and values[:done] != self._values:  # another dictionary: start again
            self._reset()
            done = 0
        for value in values[done:]:
            label = pseudonym(value, self.key)
            at = self._index.get(label)
            if at is None:
                at = self._index[label] = len(self._labels)
                self._labels.append(label)
            self._remap.append(at)
        self._values = values
        if len(self._categories.values) != len(self._labels):
            self._categories = Categories(tuple(self._labels))
        return self._categories, np.asarray(self._remap, dtype=np.int32)


def mask_snapshot(
    snapshot: Snapshot, key: bytes, labels: Labels | None = None, payloads: dict[int, bytes | None] | None = None
) -> Snapshot:
    """Return `snapshot` with customer ids pseudonymised, coordinates rounded and raw payloads masked.

    `labels` and `payloads` (masked payload by absolute row) carry the work done for an earlier
    snapshot of the same buffer over (a speed-up only; `payloads` is updated to this snapshot's rows).
    """
    memo = {} if payloads is None else payloads
    raw = tuple((row, memo[row] if row in memo else mask_payload(value, key)) for row, value in snapshot.raw)
    memo.clear()
    memo.update(raw)
    names, remap = (labels or Labels(key)).of(snapshot.dictionaries["customer_id"])
    codes = snapshot.codes["customer_id"]
    masked_codes = remap[codes] if len(remap) else codes.copy()
    masked_codes.flags.writeable = False
    numeric = dict(snapshot.numeric)
    for name in ("lat", "lng"):
        numeric[name] = round_coordinates(snapshot.numeric[name])
    return replace(
        snapshot,
        numeric=numeric,
        codes={**snapshot.codes, "customer_id": masked_codes},
        categories={**snapshot.categories, "customer_id": names},
        raw=raw,
    )


def mask_first_seen(first_seen: pd.Series, key: bytes) -> pd.Series:
    """Return customer -> first minute seen keyed by pseudonym (the earliest minute of merged ones)."""
    if first_seen.empty:
        return first_seen
    masked = pd.Series(first_seen.to_numpy(), index=[pseudonym(str(c), key) for c in first_seen.index])
    return masked.groupby(level=0, sort=False).min().rename(first_seen.name)


def mask_rollups(snapshot: RollupSnapshot, key: bytes) -> RollupSnapshot:
    """Return rollups whose first-seen history is keyed by pseudonyms (the rest holds no customer data)."""
    return replace(snapshot, first_seen=mask_first_seen(snapshot.first_seen, key))


def mask_alerts(alerts: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """Return the fraud-alert frame with customer ids pseudonymised (alerts carry no coordinates)."""
    if alerts.empty or "customer_id" not in alerts:
        return alerts
    return alerts.assign(customer_id=[pseudonym(str(c), key) for c in alerts["customer_id"]])


class _Cached:
    """The masked form of the latest input, recomputed when the input object changes (thread-safe)."""

    def __init__(self, mask: Callable[[Any], Any]) -> None:
        self._mask = mask
        self._lock = threading.Lock()
        self._last: tuple[Any, Any] | None = None

    def __call__(self, value: Any) -> Any:
        with self._lock:  # held while masking: the mask may keep state (Labels), and one run serves all
            if self._last is None or self._last[0] is not value:
                self._last = (value, self._mask(value))
            return self._last[1]


class MaskedBuffer:
    """A ring buffer seen through the mask: `snapshot()` is masked, size and capacity are the buffer's."""

    def __init__(self, buffer: RingBuffer, key: bytes) -> None:
        self.inner = buffer
        self.capacity = buffer.capacity
        labels, payloads = Labels(key), dict[int, bytes | None]()
        self._masked = _Cached(lambda snap: mask_snapshot(snap, key, labels, payloads))

    def __len__(self) -> int:
        return len(self.inner)

    @property
    def total_appended(self) -> int:
        """Rows ever appended to the buffer."""
        return self.inner.total_appended

    def snapshot(self) -> Snapshot:
        """The buffer's snapshot, masked (once per buffer version)."""
        return self._masked(self.inner.snapshot())


class MaskedRollups:
    """A source's rollups (or those kept from its buffer) seen through the mask."""

    def __init__(self, source: Any, clock: Callable[[], float], key: bytes) -> None:
        self._source = source
        self._clock = clock
        self._masked = _Cached(lambda snap: mask_rollups(snap, key))

    def snapshot(self) -> RollupSnapshot:
        """The rollups' snapshot, its first-seen history masked."""
        inner = history.rollups_of(getattr(self._source, "rollups", None), self._source.buffer, self._clock)
        return self._masked(inner)


@dataclass
class MaskedSource:
    """A live source whose data comes out masked: what a viewer's pages read.

    `clock` (epoch seconds) is the horizon of rollups kept from the buffer,
    for a source without rollups of its own.
    """

    inner: Any
    key: bytes
    clock: Callable[[], float]

    def __post_init__(self) -> None:
        self.buffer = MaskedBuffer(self.inner.buffer, self.key)
        self.rollups = MaskedRollups(self.inner, self.clock, self.key)

    def health(self) -> Any:
        """The source's health report (it holds no customer data)."""
        return self.inner.health()
