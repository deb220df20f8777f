"""Aggregations behind the pages: pure functions of DataFrames, no Streamlit.

Inputs are frames from `Snapshot.frame(columns, rows=mask)`: categorical
string columns, epoch-ms `kafka_ts_ms`, float `amount` (NaN when unknown) and
the `error_mask` bits. Groupings run on categorical codes with numpy
`bincount`, never on strings, so a million rows aggregate in milliseconds.
Time series are binned by Kafka timestamp (ingestion time) into at most
`MAX_BINS` bins of a "nice" width, so charts never receive raw rows.

Amount figures cover every selected row whose amount is known, valid or not
(an ERR_TIME event still moved money); the validity filter narrows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from dashboard.core.schema import RULE_EXPLANATIONS
from dashboard.core.timeunits import MINUTE_MS
from dashboard.store.buffer import CATEGORICAL, ERROR_BITS, Snapshot, codes_of, to_datetime
from dashboard.views.timebins import Bins, cut

MISSING = "(missing)"  # label of the empty string (code 0) in breakdowns

Level = Literal["green", "amber", "red", "gray"]
#: Counter thresholds: approval rate at or above green / amber, invalid share at or below.
APPROVAL_LEVELS = (0.90, 0.80)
INVALID_LEVELS = (0.02, 0.05)

#: error_mask value -> "ERR_A, ERR_B" for every possible mask.
ERROR_TEXT = np.array([", ".join(codes_of(m)) for m in range(256)], dtype=object)


@dataclass(frozen=True)
class Counters:
    """Headline figures of a selection; rates are None when undefined (no rows)."""

    transactions: int
    per_minute: float
    total_amount: float
    average_amount: float | None
    approval_rate: float | None
    invalid_share: float | None
    first_ms: int | None
    last_ms: int | None


def counters(frame: pd.DataFrame, now_ms: int, window_ms: int | None) -> Counters:
    """Return the counters of `frame` (kafka_ts_ms, amount, status, error_mask).

    `per_minute` divides the count by the minutes covered: from the window's
    start, or the oldest selected row when later (or for "everything"), to
    now; at least one minute. Counts include every row; the money figures
    (total, average) count valid transactions only (error_mask 0): an invalid
    one's amount is not trusted (one of 1.8e19 IRR would swamp the total).
    """
    n = len(frame)
    if n == 0:
        return Counters(0, 0.0, 0.0, None, None, None, None, None)
    ts = frame["kafka_ts_ms"].to_numpy()
    known = ts[ts >= 0]
    first = int(known.min()) if len(known) else None
    last = int(known.max()) if len(known) else None
    start = first if first is not None else now_ms
    if window_ms is not None:
        start = max(start, now_ms - window_ms)
    minutes = max(now_ms - start, MINUTE_MS) / MINUTE_MS
    amount = frame["amount"].to_numpy()
    finite = np.isfinite(amount) & (frame["error_mask"].to_numpy() == 0)
    total = float(amount[finite].sum())
    status = frame["status"]
    with_status = int((status.cat.codes > 0).sum())
    approved = int((status == "approved").sum())
    invalid = int(np.count_nonzero(frame["error_mask"].to_numpy()))
    return Counters(
        transactions=n,
        per_minute=n / minutes,
        total_amount=total,
        average_amount=total / int(finite.sum()) if finite.any() else None,
        approval_rate=approved / with_status if with_status else None,
        invalid_share=invalid / n,
        first_ms=first,
        last_ms=last,
    )


def level(value: float | None, green: float, amber: float) -> Level:
    """Traffic-light level of `value`: higher is better when green > amber, else lower is better."""
    if value is None:
        return "gray"
    if green >= amber:
        return "green" if value >= green else "amber" if value >= amber else "red"
    return "green" if value <= green else "amber" if value <= amber else "red"


def time_bins(ts_ms: np.ndarray, now_ms: int, window_ms: int | None) -> Bins:
    """Cut the range (window start or oldest row) .. (now or newest row) into aligned bins."""
    known = ts_ms[ts_ms >= 0]
    if len(known) == 0:
        return Bins(np.empty(0, dtype=np.int64), MINUTE_MS, np.full(len(ts_ms), -1))
    start = int(known.min()) if window_ms is None else now_ms - window_ms
    end = max(now_ms, int(known.max()))
    return cut(ts_ms, start, end, end - start)


def _long(bins: Bins, groups: dict[str, np.ndarray], name: str) -> pd.DataFrame:
    """Lay per-group bin counts out long: time, `name`, count (group blocks in order)."""
    times = to_datetime(bins.starts)
    nb = len(times)
    return pd.DataFrame(
        {
            "time": np.tile(times, len(groups)),
            name: np.repeat(list(groups), nb),
            "count": np.concatenate(list(groups.values())).astype(np.int64) if groups else [],
        }
    )


def rate_series(frame: pd.DataFrame, now_ms: int, window_ms: int | None) -> pd.DataFrame:
    """Return transactions per minute by bin and validity (kafka_ts_ms, error_mask).

    Columns: time (bin start, UTC), validity ("valid"/"invalid"), count, per_minute
    (count divided by the bin's minutes). Every bin appears once per validity,
    all "valid" rows first, then all "invalid" rows, bins in time order.
    """
    bins = time_bins(frame["kafka_ts_ms"].to_numpy(), now_ms, window_ms)
    nb = len(bins.starts)
    inside = bins.index >= 0
    invalid = frame["error_mask"].to_numpy()[inside] != 0
    idx = bins.index[inside]
    counts = {
        "valid": np.bincount(idx[~invalid], minlength=nb),
        "invalid": np.bincount(idx[invalid], minlength=nb),
    }
    out = _long(bins, counts, "validity")
    out["per_minute"] = out["count"] / (bins.width / MINUTE_MS)
    return out


def invalid_share_series(series: pd.DataFrame) -> pd.DataFrame:
    """Return time and invalid_share (NaN in empty bins) from a `rate_series` result."""
    invalid = (series["validity"] == "invalid").to_numpy()
    counts = series["count"].to_numpy()
    bad, good = counts[invalid], counts[~invalid]
    total = bad + good
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, bad / np.maximum(total, 1), np.nan)
    return pd.DataFrame({"time": series["time"].to_numpy()[~invalid], "invalid_share": share})


def errors_over_time(frame: pd.DataFrame, now_ms: int, window_ms: int | None) -> pd.DataFrame:
    """Return violations per bin and error code (kafka_ts_ms, error_mask): time, code, count.

    A row breaking two rules counts once under each code; codes that never
    occur are left out.
    """
    bins = time_bins(frame["kafka_ts_ms"].to_numpy(), now_ms, window_ms)
    masks = frame["error_mask"].to_numpy()
    inside = bins.index >= 0
    counts = {}
    for code, bit in ERROR_BITS.items():
        hit = inside & ((masks & bit) != 0)
        if hit.any():
            counts[code] = np.bincount(bins.index[hit], minlength=len(bins.starts))
    return _long(bins, counts, "code")


def error_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Return, per error code, the rows breaking it and their share of all rows (error_mask)."""
    masks = frame["error_mask"].to_numpy()
    n = len(masks)
    counts = [int(np.count_nonzero(masks & bit)) for bit in ERROR_BITS.values()]
    return pd.DataFrame(
        {
            "code": list(ERROR_BITS),
            "transactions": counts,
            "share": [c / n if n else 0.0 for c in counts],
            "rule": [RULE_EXPLANATIONS[c] for c in ERROR_BITS],
        }
    )


def breakdown(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Return count, share, average and total amount per value of a categorical column.

    Values absent from the rows are left out; the empty value is labelled
    MISSING. Sorted by count, largest first (ties by value).
    """
    cat = frame[column].cat
    codes = cat.codes.to_numpy()
    k = len(cat.categories)
    amount = frame["amount"].to_numpy()
    finite = np.isfinite(amount)
    count = np.bincount(codes, minlength=k)
    total = np.bincount(codes[finite], weights=amount[finite], minlength=k)
    priced = np.bincount(codes[finite], minlength=k)
    present = np.flatnonzero(count)
    labels = [str(cat.categories[i]) or MISSING for i in present]
    with np.errstate(invalid="ignore", divide="ignore"):
        average = np.where(priced[present] > 0, total[present] / priced[present], np.nan)
    out = pd.DataFrame(
        {
            column: labels,
            "count": count[present].astype(np.int64),
            "share": count[present] / max(len(codes), 1),
            "average_amount": average,
            "total_amount": total[present],
        }
    )
    return out.sort_values(["count", column], ascending=[False, True], ignore_index=True)


def top_merchants(frame: pd.DataFrame, n: int = 5, by: Literal["count", "value"] = "count") -> pd.DataFrame:
    """Return the top `n` merchants (merchant_id, amount) by transactions or by total amount.

    Columns merchant_id, count, total_amount; ties broken by merchant id;
    rows without a merchant are left out.
    """
    table = breakdown(frame, "merchant_id")
    table = table[table["merchant_id"] != MISSING]
    key = "count" if by == "count" else "total_amount"
    table = table.sort_values([key, "merchant_id"], ascending=[False, True], ignore_index=True)
    return table.loc[: n - 1, ["merchant_id", "count", "total_amount"]]


#: Options a page offers in one list (merchants, customers) at most; their strings are cut by the buffer.
MAX_OPTIONS = 1000


def ranked_values(codes: np.ndarray, dictionary: tuple[str, ...], limit: int = MAX_OPTIONS) -> list[str]:
    """Return the `limit` most frequent non-empty values present in `codes` (ties by value).

    The strings are the buffer's, so at most `dashboard.store.buffer.MAX_STRING_CHARS` long.
    """
    count = np.bincount(codes, minlength=len(dictionary))
    count[0] = 0
    present = np.flatnonzero(count)
    if len(present) > limit:  # only the candidates that can make the cut (ties at the edge included)
        edge = np.partition(count[present], len(present) - limit)[len(present) - limit]
        present = present[count[present] >= edge]
    order = sorted(present.tolist(), key=lambda i: (-count[i], dictionary[i]))
    return [dictionary[i] for i in order[:limit]]


def latest_positions(mask: np.ndarray, limit: int) -> np.ndarray:
    """Return the positions of the last `limit` rows where `mask` holds, newest first."""
    return np.flatnonzero(mask)[-limit:][::-1] if limit > 0 else np.empty(0, dtype=np.intp)


def raw_payloads(snapshot: Snapshot) -> dict[int, bytes | None]:
    """Return the kept raw payloads by snapshot position (older, evicted rows left out)."""
    base = snapshot.total_appended - len(snapshot)
    return {a - base: value for a, value in snapshot.raw if a >= base}


def latest_raw(snapshot: Snapshot, mask: np.ndarray) -> int | None:
    """Return the position of the newest selected row whose raw payload is kept, None if none is.

    Newest by Kafka timestamp, not by arrival: the feed reads several partitions,
    and which partition's batch lands last is chance. Ties go to the later arrival.
    """
    base = snapshot.total_appended - len(snapshot)
    kafka_ts = snapshot.numeric["kafka_ts_ms"]
    best: int | None = None
    for absolute, _ in snapshot.raw:
        position = absolute - base
        if 0 <= position < len(mask) and mask[position] and (best is None or kafka_ts[position] >= kafka_ts[best]):
            best = position
    return best


#: Columns of one row shown when its raw payload is no longer kept.
RECORD_COLUMNS = [
    "transaction_id",
    "ts",
    "kafka_ts",
    *CATEGORICAL,
    "amount",
    "commission_amount",
    "vat_amount",
    "total_amount",
    "risk_level",
    "lat",
    "lng",
    "partition",
    "offset",
    "error_mask",
]


def row_record(frame: pd.DataFrame) -> dict[str, object]:
    """Return the first row of `frame` as a JSON-ready dict (times as ISO text, NaN as None)."""
    out: dict[str, object] = {}
    row = frame.iloc[0]
    for name, value in row.items():
        if name == "error_mask":
            out["errors"] = codes_of(int(value))
            continue
        if isinstance(value, pd.Timestamp):
            out[str(name)] = value.isoformat()
        elif isinstance(value, np.generic):
            item = value.item()
            out[str(name)] = None if isinstance(item, float) and not np.isfinite(item) else item
        else:
            out[str(name)] = None if value is pd.NaT else value
    return out


def error_text(masks: np.ndarray) -> np.ndarray:
    """Return "ERR_A, ERR_B" for each error mask ("" when valid)."""
    return ERROR_TEXT[masks.astype(np.intp)]


def feed_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the display columns of feed rows (kafka_ts, ts, ids, enums, amount, error_mask).

    Adds `valid` and `errors` (the codes as text); keeps the row order.
    """
    out = frame.drop(columns=["error_mask"])
    out["valid"] = frame["error_mask"].to_numpy() == 0
    out["errors"] = error_text(frame["error_mask"].to_numpy())
    return out
