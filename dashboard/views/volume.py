"""Transaction volume: live, hourly, by weekday and hour, by part of the day, merchant jumps. Pure.

Every time here is EVENT time (the transaction's own timestamp). Local times
are Tehran's, UTC+03:30 all year (Iran has kept no daylight saving time since
2022), and the week is Iran's: Saturday first, Friday the weekend.

- live: the last 15 minutes of buffered rows in 10-second buckets;
- hourly, weekday x hour, part of the day: from the rollups (`History`), so
  they reach back as far as the rollups do (up to 8 days);
- jumps: a merchant's 5-minute window whose transactions exceed JUMP_FACTOR
  times the merchant's usual 5-minute volume, where usual is the mean over
  every 5-minute window the rollups cover (windows without a transaction
  count as 0), from the oldest rolled-up minute to now. A jump needs at
  least JUMP_MIN transactions (so 1 against a usual 0.2 is no jump) and the
  usual needs USUAL_MIN_WINDOWS windows of history (an hour).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.core.timeunits import DAY_MINUTES, HOUR_MINUTES, MINUTE_MS
from dashboard.store.buffer import to_datetime
from dashboard.store.rollups import MERCHANT_MINUTES
from dashboard.views.history import History, sum_by
from dashboard.views.transactions import MISSING

TEHRAN_OFFSET_MINUTES = 3 * 60 + 30
WEEKDAYS = ("Sat", "Sun", "Mon", "Tue", "Wed", "Thu", "Fri")
_EPOCH_WEEKDAY = 5  # 1970-01-01 was a Thursday: index 5 when Saturday is 0
#: Parts of the day (Tehran local time): name, first hour, hour after the last.
PARTS = (("night", 0, 6), ("morning", 6, 12), ("afternoon", 12, 18), ("evening", 18, 24))
LIVE_SPAN_MS = 15 * MINUTE_MS
LIVE_BUCKET_MS = 10_000
JUMP_FACTOR = 3.0
JUMP_MIN = 5
USUAL_MIN_WINDOWS = 12


def local_hour_and_weekday(minute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the Tehran hour of day (0-23) and weekday (0 = Saturday) of epoch minutes."""
    local = minute + TEHRAN_OFFSET_MINUTES
    return (local // HOUR_MINUTES) % 24, (local // DAY_MINUTES + _EPOCH_WEEKDAY) % 7


def _per_minute(history: History) -> tuple[np.ndarray, np.ndarray]:
    """Transactions per minute (or 5-minute slot) of a history: (minutes, counts), one pass over sorted rows."""
    frame = history.frame
    minute, (count,) = sum_by(frame["minute"].to_numpy(), frame["count"].to_numpy().astype(np.int64))
    return minute, count


def live(ts_ms: np.ndarray, now_ms: int) -> pd.DataFrame:
    """Return the last 15 minutes in 10-second buckets: time, count, peak.

    Ninety buckets, the last one holding `now_ms`; `peak` marks the buckets
    with the highest count (none when all are empty).
    """
    nb = LIVE_SPAN_MS // LIVE_BUCKET_MS
    first = now_ms // LIVE_BUCKET_MS - nb + 1
    index = ts_ms[ts_ms >= 0] // LIVE_BUCKET_MS - first
    index = index[(index >= 0) & (index < nb)]
    count = np.bincount(index, minlength=nb).astype(np.int64)
    peak = (count == count.max()) & (count > 0)
    return pd.DataFrame(
        {"time": to_datetime(np.arange(first, first + nb) * LIVE_BUCKET_MS), "count": count, "peak": peak}
    )


def hourly(history: History) -> pd.DataFrame:
    """Return transactions per clock hour from the history's first hour to now: time, count, peak.

    `peak` marks each Tehran day's busiest hour (the first on a tie; none on
    a day without transactions).
    """
    first = history.first_minute // HOUR_MINUTES
    last = history.end_minute // HOUR_MINUTES
    nb = last - first + 1
    minute, per_minute = _per_minute(history)
    index = minute // HOUR_MINUTES - first
    inside = (index >= 0) & (index < nb)
    count = np.bincount(index[inside], weights=per_minute[inside], minlength=nb).astype(np.int64)
    hours = np.arange(first, last + 1, dtype=np.int64)
    day = (hours * HOUR_MINUTES + TEHRAN_OFFSET_MINUTES) // DAY_MINUTES
    peak = np.zeros(nb, dtype=bool)
    starts = np.flatnonzero(np.concatenate(([True], day[1:] != day[:-1])))
    for lo, hi in zip(starts, [*starts[1:], nb], strict=True):
        best = lo + int(np.argmax(count[lo:hi]))
        peak[best] = count[best] > 0
    return pd.DataFrame({"time": to_datetime(hours * HOUR_MINUTES * MINUTE_MS), "count": count, "peak": peak})


def heatmap(history: History) -> pd.DataFrame:
    """Return transactions by Tehran weekday and hour of day: weekday, hour, count, hours, average.

    `hours` is how many times that weekday-hour occurs from the history's
    first hour to now; `average` = count / hours (NaN when it never occurs).
    All 168 cells, Saturday 00:00 first.
    """
    minute, per_minute = _per_minute(history)
    hour, weekday = local_hour_and_weekday(minute)
    count = np.bincount(weekday * 24 + hour, weights=per_minute, minlength=168)
    covered = np.arange(history.first_minute // HOUR_MINUTES, history.end_minute // HOUR_MINUTES + 1) * HOUR_MINUTES
    c_hour, c_weekday = local_hour_and_weekday(covered)
    hours = np.bincount(c_weekday * 24 + c_hour, minlength=168)
    with np.errstate(invalid="ignore", divide="ignore"):
        average = np.where(hours > 0, count / np.maximum(hours, 1), np.nan)
    return pd.DataFrame(
        {
            "weekday": np.repeat(WEEKDAYS, 24),
            "hour": np.tile(np.arange(24), 7),
            "count": count.astype(np.int64),
            "hours": hours.astype(np.int64),
            "average": average,
        }
    )


def parts_of_day(history: History) -> pd.DataFrame:
    """Return each merchant category's share of transactions by part of the (Tehran) day.

    Columns merchant_category, transactions, one share column per part of
    PARTS, busiest (the part with the most; the first on a tie). The parts
    are all six hours long, so shares compare directly. Sorted by
    transactions, most first; categories without transactions left out.
    """
    frame = history.frame
    cat = frame["merchant_category"].cat
    k, p = len(cat.categories), len(PARTS)
    keys = frame["minute"].to_numpy() * k + cat.codes.to_numpy()  # sorted: rows are by minute, then category
    keys, (per_key,) = sum_by(keys, frame["count"].to_numpy().astype(np.int64))
    hour, _ = local_hour_and_weekday(keys // k)
    bounds = np.array([start for _, start, _ in PARTS[1:]])
    part = np.searchsorted(bounds, hour, side="right")
    counts = np.bincount(keys % k * p + part, weights=per_key, minlength=k * p).reshape(k, p)
    total = counts.sum(axis=1)
    present = np.flatnonzero(total)
    data: dict[str, object] = {
        "merchant_category": [str(cat.categories[i]) or MISSING for i in present],
        "transactions": total[present].astype(np.int64),
    }
    for j, (name, _, _) in enumerate(PARTS):
        data[name] = counts[present, j] / total[present]
    data["busiest"] = [PARTS[j][0] for j in np.argmax(counts[present], axis=1)]
    out = pd.DataFrame(data)
    return out.sort_values(["transactions", "merchant_category"], ascending=[False, True], ignore_index=True)


def jumps(merchants: History, since_minute: int | None, covered_from: int, factor: float = JUMP_FACTOR) -> pd.DataFrame:
    """Return the 5-minute windows where a merchant's volume jumped above `factor` x its usual.

    `merchants`: the merchant table over all the history (no time window);
    `since_minute`: only windows starting at or after it are reported (None:
    all); `covered_from`: the oldest minute the rollups cover, where the usual
    starts. Columns window (start, UTC), merchant_id, transactions, usual
    (mean per window), ratio; newest first, then by ratio. Empty when less
    than USUAL_MIN_WINDOWS windows are covered.
    """
    if not merchants.merchant_table:
        raise ValueError("jumps need the merchant table")
    frame = merchants.frame
    first = covered_from // MERCHANT_MINUTES
    windows = merchants.end_minute // MERCHANT_MINUTES - first + 1
    merchant = frame["merchant_id"].cat
    k = max(len(merchant.categories), 1)
    keys = frame["minute"].to_numpy() * k + merchant.codes.to_numpy()  # minute: the slot's first
    keys, (count,) = sum_by(keys, frame["count"].to_numpy().astype(np.int64))
    minute, code = keys // k, keys % k
    usual = np.bincount(code, weights=count, minlength=k) / max(windows, 1)
    jump = (code > 0) & (count >= JUMP_MIN) & (count > factor * usual[code])
    if since_minute is not None:
        jump &= minute >= since_minute // MERCHANT_MINUTES * MERCHANT_MINUTES
    if windows < USUAL_MIN_WINDOWS:
        jump[:] = False
    out = pd.DataFrame(
        {
            "window": to_datetime(minute[jump] * MINUTE_MS),
            "merchant_id": np.asarray(merchant.categories, dtype=object)[code[jump]],
            "transactions": count[jump],
            "usual": usual[code[jump]],
            "ratio": count[jump] / usual[code[jump]],
        }
    )
    return out.sort_values(["window", "ratio", "merchant_id"], ascending=[False, False, True], ignore_index=True)
