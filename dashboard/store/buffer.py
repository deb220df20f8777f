"""A bounded, columnar, thread-safe ring buffer of validated transactions.

Numbers live in numpy arrays, repeated strings are dictionary-encoded (an
integer code per row plus a shared list of values), and the transaction id is
a fixed-width byte string. One writer (the feed thread) appends batches under
a lock; readers take an immutable `Snapshot` whose arrays are copies in
arrival order, oldest first. When full, the oldest rows are overwritten.
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
RAW_KEEP = 300  # latest raw payloads kept for the sample views

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
    """Append-only mapping of strings to small integer codes (0 is "")."""

    def __init__(self) -> None:
        self.values: list[str] = [""]
        self.index: dict[str, int] = {"": 0}

    def encode(self, values: Sequence[str | None]) -> np.ndarray:
        """Return int32 codes for `values`, adding unseen values (None becomes code 0)."""
        index, vals = self.index, self.values
        out = np.empty(len(values), dtype=np.int32)
        for i, v in enumerate(values):
            if v is None:
                out[i] = 0
                continue
            code = index.get(v)
            if code is None:
                code = index[v] = len(vals)
                vals.append(v)
            out[i] = code
        return out


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
    dictionaries: Mapping[str, tuple[str, ...]]
    ids: np.ndarray
    raw: tuple[tuple[int, bytes | None], ...]
    total_appended: int
    version: int

    def __len__(self) -> int:
        return len(self.ids)

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
                    self.codes[name][sel], categories=pd.Index(self.dictionaries[name]), validate=False
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
        self._dicts = {name: Dictionary() for name in CATEGORICAL}
        self._ids = np.zeros(capacity, dtype=f"S{ID_WIDTH}")
        self._raw: deque[tuple[int, bytes | None]] = deque(maxlen=RAW_KEEP)
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
            for j in range(max(0, n - RAW_KEEP), n):
                self._raw.append((first + j, batch.raw[j]))

    def snapshot(self) -> Snapshot:
        """Return an immutable copy in arrival order; reused while nothing was appended."""
        with self._lock:
            cached = self._snapshot
            if cached is not None and cached.version == self._version:
                return cached
            snap = Snapshot(
                numeric={name: self._ordered(arr) for name, arr in self._numeric.items()},
                codes={name: self._ordered(arr) for name, arr in self._codes.items()},
                dictionaries={name: tuple(d.values) for name, d in self._dicts.items()},
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

    def nbytes(self) -> int:
        """Bytes held by the columns and dictionaries (not the raw sample)."""
        cols = sum(a.nbytes for a in self._numeric.values()) + sum(a.nbytes for a in self._codes.values())
        dict_bytes = sum(sum(len(v) + 57 for v in d.values) for d in self._dicts.values())
        return cols + self._ids.nbytes + dict_bytes
