"""Customer analytics: pure functions of buffered rows, no Streamlit.

Inputs are frames from `Snapshot.frame` (categorical customer_id,
customer_type, payment_method, status, whose code 0 is the missing value
"", as in every buffer dictionary; float amount; epoch-ms ts_ms).
Groupings run on categorical codes with numpy, never on strings. Rows
without a customer id (code 0) are left out of every per-customer figure. Times are
EVENT times (ts_ms); rows without one (ts_ms < 0) are left out of the time
series.

"New" and "returning" rest on each customer's first-seen time: the earliest
event time the rollups hold for them (every transaction the feed has read,
whatever the filters), else the earliest in the rows given. A customer is
new in the bin holding their first-seen time and returning in every later one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.core.timeunits import MINUTE_MS
from dashboard.store.buffer import Snapshot, to_datetime
from dashboard.views.transactions import MISSING

MAX_BARS = 40  # histogram bars at most
DENSE_CELLS = 8_000_000  # distinct pairs through a dense table up to this many cells (8 MB)
KINDS = ("new", "returning")


def _codes(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, pd.Index]:
    cat = frame[column].array  # a Categorical (cheaper than the .cat accessor)
    return np.asarray(cat.codes), cat.categories


def transactions_per_customer(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return (customer codes present, their transaction counts), the missing id left out."""
    codes, names = _codes(frame, "customer_id")
    count = np.bincount(codes, minlength=len(names))
    count[:1] = 0  # code 0: no customer id
    present = np.flatnonzero(count)
    return present, count[present]


def histogram(frame: pd.DataFrame, max_bars: int = MAX_BARS) -> pd.DataFrame:
    """Return how many customers made how many transactions: low, high (inclusive), customers.

    One bar per count while the largest count is at most `max_bars`, else
    bars `ceil(largest / max_bars)` counts wide; empty bars are kept.
    """
    _, counts = transactions_per_customer(frame)
    if len(counts) == 0:
        return pd.DataFrame({"low": [], "high": [], "customers": []}, dtype=np.int64)
    width = max(1, -(-int(counts.max()) // max_bars))
    bars = np.bincount((counts - 1) // width)
    low = np.arange(len(bars)) * width + 1
    return pd.DataFrame({"low": low, "high": low + width - 1, "customers": bars.astype(np.int64)})


def first_seen_ms(first_seen: pd.Series, snapshot: Snapshot) -> np.ndarray:
    """Return the first-seen time (epoch ms) of each customer code of `snapshot` (and of its frames).

    From `first_seen` (customer_id -> first minute, the rollups'), else the
    earliest event time of the code among all buffered rows, whatever the
    filters; -1 when neither knows it.
    """
    codes = snapshot.codes["customer_id"]
    ts = snapshot.numeric["ts_ms"]
    names = snapshot.categories["customer_id"].values
    never = np.iinfo(np.int64).max
    earliest = np.full(len(names), never, dtype=np.int64)
    timed = ts >= 0
    np.minimum.at(earliest, codes[timed], ts[timed])
    if not first_seen.empty:
        known = first_seen.reindex(pd.Index(names, dtype=object)).to_numpy(dtype=np.float64)
        has = np.isfinite(known)
        earliest[has] = np.minimum(known[has].astype(np.int64) * MINUTE_MS, earliest[has])  # a row may predate them
    earliest[earliest == never] = -1
    return earliest


def distinct_pairs(a: np.ndarray, b: np.ndarray, kb: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct (a, b) pairs of non-negative codes (b < kb), sorted by a then b.

    Marks a dense table of a x b cells when it is small (no sort: linear),
    else sorts the pair keys (see `distinct`).
    """
    if len(a) == 0:
        return a.astype(np.int64), b.astype(np.int64)
    keys = a.astype(np.int64) * kb + b
    cells = (int(a.max()) + 1) * kb
    if cells <= DENSE_CELLS:
        seen = np.zeros(cells, dtype=bool)
        seen[keys] = True
        keys = np.flatnonzero(seen)
    else:
        keys = distinct(keys)
    return keys // kb, keys % kb


def distinct(values: np.ndarray) -> np.ndarray:
    """Return the distinct values, sorted: np.unique's result.

    A sort and one comparison pass: numpy 2.4's np.unique (hash-based) took
    10-20x longer on 100,000 pair keys, which ruled the Customers page's time.
    """
    ordered = np.sort(values)
    if len(ordered) == 0:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _pairs(frame: pd.DataFrame, start_ms: int, end_ms: int, width_ms: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Distinct (bin, customer code) pairs of timed rows with an id: bins, codes, bin count, first bin number."""
    codes, names = _codes(frame, "customer_id")
    ts = frame["ts_ms"].to_numpy()
    first = start_ms // width_ms
    nb = int(end_ms // width_ms - first + 1)
    index = ts // width_ms - first
    rows = (ts >= 0) & (codes > 0) & (index >= 0) & (index < nb)
    bins, customer = distinct_pairs(index[rows], codes[rows], max(len(names), 1))
    return bins, customer, nb, int(first)


def active(frame: pd.DataFrame, start_ms: int, end_ms: int, width_ms: int) -> pd.DataFrame:
    """Return distinct customers per bin: time, customers.

    Bins of `width_ms` aligned to it, from the one holding `start_ms` to the
    one holding `end_ms`, in time order.
    """
    bins, _, nb, first = _pairs(frame, start_ms, end_ms, width_ms)
    starts = to_datetime(np.arange(first, first + nb, dtype=np.int64) * width_ms)
    return pd.DataFrame({"time": starts, "customers": np.bincount(bins, minlength=nb).astype(np.int64)})


def new_and_returning(
    frame: pd.DataFrame, first_ms: np.ndarray, start_ms: int, end_ms: int, width_ms: int
) -> pd.DataFrame:
    """Return distinct customers per bin, split into new and returning: time, kind, customers.

    Bins as `active`. `first_ms`: first-seen time per customer code (see
    `first_seen_ms`); a customer is new in the bin holding it (or when it is
    unknown or later), returning after. Every bin appears once per kind, all
    "new" rows first.
    """
    bins, customer, nb, first = _pairs(frame, start_ms, end_ms, width_ms)
    seen = first_ms[customer]
    new = (seen < 0) | (seen // width_ms - first >= bins)
    counts = {"new": np.bincount(bins[new], minlength=nb), "returning": np.bincount(bins[~new], minlength=nb)}
    starts = to_datetime(np.arange(first, first + nb, dtype=np.int64) * width_ms)
    return pd.DataFrame(
        {
            "time": np.tile(starts, len(KINDS)),
            "kind": np.repeat(list(KINDS), nb),
            "customers": np.concatenate([counts[k] for k in KINDS]).astype(np.int64),
        }
    )


def recent(frame: pd.DataFrame, first_ms: np.ndarray, since_ms: int, now_ms: int) -> tuple[int, int]:
    """Return (active, new): distinct customers with a transaction in (since_ms, now_ms], and those first seen then."""
    codes, _ = _codes(frame, "customer_id")
    ts = frame["ts_ms"].to_numpy()
    active = distinct(codes[(ts > since_ms) & (ts <= now_ms) & (codes > 0)])
    return len(active), int(np.count_nonzero(first_ms[active] > since_ms))


def _mode(groups: np.ndarray, values: np.ndarray, labels: pd.Index, k: int) -> np.ndarray:
    """Most frequent label of `values` in each of `k` groups (ties: alphabetical; "" when the group is empty)."""
    order = np.argsort(np.asarray(labels, dtype=object).astype(str), kind="stable")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    # int64: category codes are int16 below 32,768 categories, and groups * len(labels) can pass that.
    cells = groups.astype(np.int64) * len(labels) + rank[values]
    table = np.bincount(cells, minlength=k * len(labels)).reshape(k, len(labels))
    best = order[np.argmax(table, axis=1)]
    out = np.asarray(labels, dtype=object)[best]
    out[table.sum(axis=1) == 0] = ""
    return out


def _approval(groups: np.ndarray, status: pd.Series, k: int, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """Approved among `rows` with a status, per group (NaN when none has one); `groups` are those rows' groups."""
    codes = status.cat.codes.to_numpy()[rows]
    categories = list(status.cat.categories)
    with_status = np.bincount(groups[codes > 0], minlength=k)
    approved_code = categories.index("approved") if "approved" in categories else -1
    approved = np.bincount(groups[codes == approved_code], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(with_status > 0, approved / np.maximum(with_status, 1), np.nan)


def by_type(frame: pd.DataFrame) -> pd.DataFrame:
    """Return behaviour by customer type (customer_type, customer_id, amount, status, payment_method).

    Columns customer_type, customers (distinct ids), transactions, share,
    per_customer, average_amount (known amounts), approval_rate (approved
    among rows with a status), preferred_method (most used; ties alphabetical).
    Sorted by transactions, most first; the empty type is labelled MISSING.
    """
    groups, labels = _codes(frame, "customer_type")
    k = len(labels)
    count = np.bincount(groups, minlength=k)
    customer, names = _codes(frame, "customer_id")
    has_id = customer > 0
    distinct = np.bincount(distinct_pairs(groups[has_id], customer[has_id], max(len(names), 1))[0], minlength=k)
    amount = frame["amount"].to_numpy()
    finite = np.isfinite(amount)
    total = np.bincount(groups[finite], weights=amount[finite], minlength=k)
    priced = np.bincount(groups[finite], minlength=k)
    methods, method_labels = _codes(frame, "payment_method")
    preferred = _mode(groups, methods, method_labels, k)
    approval = _approval(groups, frame["status"], k)
    present = np.flatnonzero(count)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = pd.DataFrame(
            {
                "customer_type": [str(labels[i]) or MISSING for i in present],
                "customers": distinct[present].astype(np.int64),
                "transactions": count[present].astype(np.int64),
                "share": count[present] / max(len(groups), 1),
                "per_customer": np.where(distinct[present] > 0, count[present] / distinct[present], np.nan),
                "average_amount": np.where(priced[present] > 0, total[present] / priced[present], np.nan),
                "approval_rate": approval[present],
                "preferred_method": [str(m) or MISSING for m in preferred[present]],
            }
        )
    return out.sort_values(["transactions", "customer_type"], ascending=[False, True], ignore_index=True)


def top_customers(frame: pd.DataFrame, first_ms: np.ndarray, n: int = 10) -> pd.DataFrame:
    """Return the `n` customers with the most transactions (ties by id).

    Columns customer_id, transactions, total_amount, average_amount,
    approval_rate, customer_type and preferred_method (most frequent; ties
    alphabetical), first_seen (UTC; NaT when unknown).
    """
    present, counts = transactions_per_customer(frame)
    customer, names = _codes(frame, "customer_id")
    cutoff = np.partition(counts, len(counts) - n)[len(counts) - n] if len(counts) > n else 0
    candidates = np.flatnonzero(counts >= cutoff)  # the top n and their ties: few
    order = sorted(candidates.tolist(), key=lambda i: (-counts[i], str(names[present[i]])))[:n]
    chosen = present[order]
    # Every figure below is of the chosen customers' rows only: group g is chosen[g].
    slot = np.full(len(names), -1, dtype=np.int64)
    slot[chosen] = np.arange(len(chosen))
    group = slot[customer]
    rows = np.flatnonzero(group >= 0)
    group = group[rows]
    k = len(chosen)
    amount = frame["amount"].to_numpy()[rows]
    finite = np.isfinite(amount)
    total = np.bincount(group[finite], weights=amount[finite], minlength=k)
    priced = np.bincount(group[finite], minlength=k)
    types, type_labels = _codes(frame, "customer_type")
    methods, method_labels = _codes(frame, "payment_method")
    seen = first_ms[chosen].astype(np.int64)
    first = to_datetime(np.where(seen >= 0, seen, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "customer_id": [str(names[i]) for i in chosen],
                "transactions": counts[order].astype(np.int64),
                "total_amount": total,
                "average_amount": np.where(priced > 0, total / np.maximum(priced, 1), np.nan),
                "approval_rate": _approval(group, frame["status"], k, rows),
                "customer_type": _mode(group, types[rows], type_labels, k),
                "preferred_method": _mode(group, methods[rows], method_labels, k),
                "first_seen": first.where(seen >= 0),
            }
        )
