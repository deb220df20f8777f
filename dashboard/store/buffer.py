"""A bounded, columnar, thread-safe ring buffer of validated transactions.

Numbers live in numpy arrays, repeated strings are dictionary-encoded (an
integer code per row plus a shared list of values), and the transaction id is
a fixed-width byte string. One writer (the feed thread) appends batches under
a lock; readers take an immutable `Snapshot` whose arrays are copies in
arrival order, oldest first. When full, the oldest rows are overwritten.

Memory is independent of how many distinct strings ever arrived: a string
longer than MAX_STRING_CHARS is cut there, and a dictionary that grew beyond
twice the capacity (plus COMPACT_SLACK) is compacted, amortised: the strings
no buffered row uses are dropped and the codes renumbered in one numpy pass.
After a compaction a dictionary holds at most capacity + 1 values, so the
next one is at least capacity appends away. The raw payloads kept for the
sample views are capped in count (RAW_KEEP) and bytes (RAW_KEEP_BYTES).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from dashboard.core.schema import ERROR_CODES

ID_WIDTH = 40  # bytes kept of transaction_id; a UUID is 36
RAW_KEEP = 300  # latest raw payloads kept for the sample views...
RAW_KEEP_BYTES = 2_000_000  # ...and their bytes at most (a payload larger than this is not kept)
MAX_STRING_CHARS = 200  # a categorical string is cut to this many characters (ids are ~10)
COMPACT_SLACK = 1024  # a dictionary is compacted beyond 2 x capacity + this many values

#: Numeric columns and their dtypes.
NUMERIC: dict[str, np.dtype[Any]] = {
    "ts_ms": np.dtype(np.int64),  # event time, epoch ms (-1 when unparsable)
    "kafka_ts_ms": np.dtype(np.int64),  # Kafka timestamp (ingestion time), epoch ms
    "amount": np.dtype(np.float64),  # NaN when missing or invalid
    "commission_amount": np.dtype(np.float64),
    "vat_amount": np.dtype(np.float64),
    "total_amount": np.dtype(np.float64),
    "risk_level": np.dtype(np.int8),  # 0 when missing or invalid
    "lat": np.dtype(np.float32),
    "lng": np.dtype(np.float32),
    "error_mask": np.dtype(np.uint8),  # bit i set: ERROR_CODES[i] violated
    "partition": np.dtype(np.int16),
    "offset": np.dtype(np.int64),
}
#: Dictionary-encoded string columns; code 0 always stands for "missing" ("").
CATEGORICAL: tuple[str, ...] = (
    "merchant_id",
    "customer_id",
    "merchant_category",
    "payment_method",
    "status",
    "commission_type",
    "customer_type",
    "device_os",
    "failure_reason",
)
ERROR_BITS: dict[str, int] = {code: 1 << i for i, code in enumerate(ERROR_CODES)}


def mask_of(codes: Iterable[str]) -> int:
    """Return the error bitmask of a set of error codes."""
    mask = 0
    for code in codes:
        mask |= ERROR_BITS[code]
    return mask


def codes_of(mask: int) -> list[str]:
    """Return the error codes of a bitmask, in rule order."""
    return [code for code, bit in ERROR_BITS.items() if mask & bit]


class Dictionary:
    """Mapping of strings to small integer codes (0 is ""); grows by `encode`, shrinks by `compact`.

    Values longer than `max_chars` are stored cut to `max_chars` (None: kept whole).
    """

    def __init__(self, max_chars: int | None = None) -> None:
        self.values: list[str] = [""]
        self.index: dict[str, int] = {"": 0}
        self.max_chars = max_chars
        self._categories: Categories | None = None

    def categories(self) -> Categories:
        """Return the values as immutable Categories; the same object while no value was added or dropped."""
        categories = self._categories
        if categories is None or len(categories.values) != len(self.values):
            categories = self._categories = Categories(tuple(self.values))
        return categories

    def encode(self, values: Sequence[str | None]) -> np.ndarray:
        """Return int32 codes for `values`, adding unseen values (None becomes code 0)."""
        index, vals, limit = self.index, self.values, self.max_chars
        out = np.empty(len(values), dtype=np.int32)
        for i, v in enumerate(values):
            if v is None:
                out[i] = 0
                continue
            code = index.get(v)
            if code is None:
                cut = v[:limit] if limit is not None and len(v) > limit else v
                if cut is not v:
                    code = index.get(cut)
                if code is None:
                    code = index[cut] = len(vals)
                    vals.append(cut)
            out[i] = code
        return out

    def compact(self, used: np.ndarray) -> np.ndarray:
        """Keep only the values whose codes are in `used` (and ""), in code order; return old code -> new code.

        Codes not kept map to 0. The caller renumbers its codes with the
        returned table (`table[codes]`, one numpy pass).
        """
        keep = np.zeros(len(self.values), dtype=bool)
        keep[used] = True
        keep[0] = True
        kept = np.flatnonzero(keep)
        table = np.zeros(len(self.values), dtype=np.int32)
        table[kept] = np.arange(len(kept), dtype=np.int32)
        values = self.values
        self.values = [values[i] for i in kept.tolist()]
        self.index = {v: i for i, v in enumerate(self.values)}
        self._categories = None
        return table


class Categories:
    """The values of a dictionary at one moment, and their pandas dtype, built once on first use.

    Snapshots share one Categories while the dictionary does not change, so the
    dtype (an object Index of up to millions of strings, checked for
    uniqueness) is built once per dictionary state rather than per frame.
    """

    __slots__ = ("_dtype", "values")

    def __init__(self, values: tuple[str, ...]) -> None:
        self.values = values
        self._dtype: pd.CategoricalDtype | None = None

    def dtype(self) -> pd.CategoricalDtype:
        """The CategoricalDtype whose categories are the values, in code order."""
        dtype = self._dtype
        if dtype is None:  # two readers may both build it; either result is the same
            dtype = self._dtype = pd.CategoricalDtype(pd.Index(self.values, dtype=object))
        return dtype


@dataclass(frozen=True)
class Batch:
    """Columns of a batch of transactions, all of one length, ready to append.

    `numeric` maps every NUMERIC name to an array; `strings` maps every
    CATEGORICAL name to a list of str or None; `ids` are transaction ids;
    `raw` the message values (kept only for the latest few).
    """

    numeric: Mapping[str, np.ndarray]
    strings: Mapping[str, Sequence[str | None]]
    ids: Sequence[str | None]
    raw: Sequence[bytes | None]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Snapshot:
    """An immutable copy of the buffer, oldest row first.

    `numeric[name]` and `codes[name]` are arrays of equal length; the strings
    of a categorical column are `dictionaries[name][codes]`. `raw` holds the
    latest payloads (newest last) as (offset row, bytes).
    """

    numeric: Mapping[str, np.ndarray]
    codes: Mapping[str, np.ndarray]
    categories: Mapping[str, Categories]
    ids: np.ndarray
    raw: tuple[tuple[int, bytes | None], ...]
    total_appended: int
    version: int

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dictionaries(self) -> dict[str, tuple[str, ...]]:
        """The values of every categorical column, in code order."""
        return {name: categories.values for name, categories in self.categories.items()}

    def frame(self, columns: Iterable[str] | None = None, rows: np.ndarray | slice | None = None) -> pd.DataFrame:
        """Return a DataFrame of `columns` (default: all but the id) for `rows` (default: all).

        Categorical columns become pandas Categoricals sharing the dictionary
        (no string copies); `ts` and `kafka_ts` are added as UTC datetimes when
        their epoch-ms columns are asked for; `valid` is derived from error_mask.
        """
        names = list(columns) if columns is not None else [*NUMERIC, *CATEGORICAL, "valid"]
        sel = slice(None) if rows is None else rows
        data: dict[str, Any] = {}
        for name in names:
            if name in NUMERIC:
                data[name] = self.numeric[name][sel]
            elif name in CATEGORICAL:
                data[name] = pd.Categorical.from_codes(
                    self.codes[name][sel], dtype=self.categories[name].dtype(), validate=False
                )
            elif name == "valid":
                data[name] = self.numeric["error_mask"][sel] == 0
            elif name == "transaction_id":
                data[name] = np.char.decode(self.ids[sel], "utf-8", "replace")
            elif name in ("ts", "kafka_ts"):
                data[name] = to_datetime(self.numeric[f"{name}_ms"][sel])
            else:
                raise KeyError(name)
        return pd.DataFrame(data, copy=False)


def to_datetime(ms: np.ndarray | pd.Series) -> pd.DatetimeIndex:
    """Return UTC datetimes for epoch milliseconds; negative values (unknown) become NaT."""
    values = np.array(ms, dtype=np.int64)  # a copy, whatever array-like came in
    values[values < 0] = np.iinfo(np.int64).min  # the NaT sentinel
    return pd.DatetimeIndex(values.view("datetime64[ms]")).tz_localize("UTC")


class BufferView(Protocol):
    """What readers need of a buffer: its snapshots, size and capacity (a RingBuffer, or a masking view of one)."""

    @property
    def capacity(self) -> int: ...

    def __len__(self) -> int: ...

    def snapshot(self) -> Snapshot: ...


class RingBuffer:
    """Fixed-capacity columnar ring buffer; one writer, many readers."""

    def __init__(self, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._numeric = {name: np.zeros(capacity, dtype=dt) for name, dt in NUMERIC.items()}
        self._codes = {name: np.zeros(capacity, dtype=np.int32) for name in CATEGORICAL}
        self._dicts = {name: Dictionary(MAX_STRING_CHARS) for name in CATEGORICAL}
        self._ids = np.zeros(capacity, dtype=f"S{ID_WIDTH}")
        self._raw: deque[tuple[int, bytes | None]] = deque(maxlen=RAW_KEEP)
        self._raw_bytes = 0
        self.compactions = 0  # dictionary compactions so far (for tests and monitoring)
        self._start = 0  # index of the oldest row
        self._size = 0
        self._appended = 0
        self._version = 0
        self._snapshot: Snapshot | None = None

    def __len__(self) -> int:
        return self._size

    @property
    def total_appended(self) -> int:
        """Rows ever appended, evicted ones included."""
        return self._appended

    def append(self, batch: Batch) -> None:
        """Append a batch, evicting the oldest rows beyond capacity."""
        n = len(batch)
        if n == 0:
            return
        ids = np.array([(i or "").encode()[:ID_WIDTH] for i in batch.ids], dtype=f"S{ID_WIDTH}")
        with self._lock:
            codes = {name: self._dicts[name].encode(batch.strings[name]) for name in CATEGORICAL}
            skip = max(0, n - self.capacity)  # a batch larger than the buffer keeps its tail
            count = n - skip
            end = (self._start + self._size) % self.capacity
            idx = (end + np.arange(count)) % self.capacity
            for name, arr in self._numeric.items():
                arr[idx] = batch.numeric[name][skip:]
            for name, arr in self._codes.items():
                arr[idx] = codes[name][skip:]
            self._ids[idx] = ids[skip:]
            overflow = max(0, self._size + count - self.capacity)
            self._start = (self._start + overflow) % self.capacity
            self._size = min(self.capacity, self._size + count)
            first = self._appended
            self._appended += n
            self._version += 1
            self._keep_raw(first, batch.raw)
            self._compact()

    def clear(self) -> None:
        """Drop every row, payload and string (the topic was recreated); `total_appended` keeps counting."""
        with self._lock:
            self._dicts = {name: Dictionary(MAX_STRING_CHARS) for name in CATEGORICAL}
            self._codes = {name: np.zeros(self.capacity, dtype=np.int32) for name in CATEGORICAL}
            self._raw.clear()
            self._raw_bytes = 0
            self._start = self._size = 0
            self._version += 1
            self._snapshot = None

    def _keep_raw(self, first: int, raw: Sequence[bytes | None]) -> None:
        """Keep the latest payloads within RAW_KEEP and RAW_KEEP_BYTES; caller holds the lock."""
        kept = self._raw
        for j in range(max(0, len(raw) - RAW_KEEP), len(raw)):
            value = raw[j]
            size = len(value) if value is not None else 0
            if size > RAW_KEEP_BYTES:
                continue  # too large to keep at all: the sample view says its payload is not kept
            if len(kept) == RAW_KEEP:
                old = kept.popleft()[1]
                self._raw_bytes -= len(old) if old is not None else 0
            kept.append((first + j, value))
            self._raw_bytes += size
            while self._raw_bytes > RAW_KEEP_BYTES:
                old = kept.popleft()[1]
                self._raw_bytes -= len(old) if old is not None else 0

    def _compact(self) -> None:
        """Drop the strings no buffered row uses from dictionaries grown past their bound; caller holds the lock."""
        limit = 2 * self.capacity + COMPACT_SLACK
        for name, dictionary in self._dicts.items():
            if len(dictionary.values) <= limit:
                continue
            codes = self._codes[name]
            # Unused slots of a buffer not yet full hold code 0, which is always kept.
            table = dictionary.compact(np.flatnonzero(np.bincount(codes, minlength=len(dictionary.values))))
            codes[:] = table[codes]
            self.compactions += 1

    def raw_bytes(self) -> int:
        """Bytes of the raw payloads kept for the sample views."""
        with self._lock:
            return self._raw_bytes

    def snapshot(self) -> Snapshot:
        """Return an immutable copy in arrival order; reused while nothing was appended."""
        with self._lock:
            cached = self._snapshot
            if cached is not None and cached.version == self._version:
                return cached
            snap = Snapshot(
                numeric={name: self._ordered(arr) for name, arr in self._numeric.items()},
                codes={name: self._ordered(arr) for name, arr in self._codes.items()},
                categories={name: d.categories() for name, d in self._dicts.items()},
                ids=self._ordered(self._ids),
                raw=tuple(self._raw),
                total_appended=self._appended,
                version=self._version,
            )
            self._snapshot = snap
            return snap

    def _ordered(self, arr: np.ndarray) -> np.ndarray:
        """Return a read-only copy of the live rows of `arr`, oldest first."""
        end = self._start + self._size
        if end <= self.capacity:
            out = arr[self._start : end].copy()
        else:
            out = np.concatenate((arr[self._start :], arr[: end - self.capacity]))
        out.flags.writeable = False
        return out

    def dictionary_sizes(self) -> dict[str, int]:
        """Values held per categorical column ("" included)."""
        with self._lock:
            return {name: len(d.values) for name, d in self._dicts.items()}

    def nbytes(self) -> int:
        """Bytes held by the columns and dictionaries (not the raw sample)."""
        cols = sum(a.nbytes for a in self._numeric.values()) + sum(a.nbytes for a in self._codes.values())
        dict_bytes = sum(sum(len(v) + 57 for v in d.values) for d in self._dicts.values())
        return cols + self._ids.nbytes + dict_bytes
