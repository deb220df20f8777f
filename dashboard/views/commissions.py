"""Commission analytics and the commission what-if: pure functions of frames, no Streamlit.

Figures from the rollups (`dashboard.views.history.History`): commission per minute
by commission type, and the merchants earning the most commission in each
5-minute window. Figures from buffered rows (`Snapshot.frame`): the
commission ratio by merchant category, and the what-if.

The what-if recomputes the commission of the same transactions under each of
three plain schemes (rates in basis points, 100 bp = 1 %; each transaction's
commission is rounded down to a whole rial, as the generator does):

- flat: 2 % of the amount, whatever the amount (what the generator charges
  under every commission type);
- progressive: marginal rates rising with the amount, like an income tax:
  1.5 % of the part up to 250,000 IRR, 2 % of the part from 250,000 to
  1,000,000 IRR, 3 % of the part above 1,000,000 IRR;
- tiered: one rate by the merchant's monthly volume (a volume discount):
  2.5 % under 5 billion IRR a month, 2 % from 5 to 50 billion, 1.5 % from
  50 billion. The monthly volume is projected from the rollups: the
  merchant's total amount over the days they cover, scaled to 30 days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.core.schema import COMMISSION_RATE
from dashboard.core.timeunits import DAY_MINUTES, MINUTE_MS
from dashboard.store.buffer import to_datetime
from dashboard.views.history import History, sum_by, time_bins
from dashboard.views.transactions import MISSING

FLAT_BP = round(COMMISSION_RATE * 10_000)  # what the generator charges
#: Marginal bands of the progressive scheme: (upper bound of the band in IRR, rate in bp).
PROGRESSIVE_BANDS: tuple[tuple[float, int], ...] = ((250_000, 150), (1_000_000, 200), (math.inf, 300))
#: Tiers by monthly volume: (volume from which the tier starts, IRR per 30 days; rate in bp).
TIERS: tuple[tuple[float, int], ...] = ((0.0, 250), (5e9, 200), (50e9, 150))
SCHEMES = ("flat", "progressive", "tiered")
SCHEME_TEXT = {
    "flat": "2 % of every amount (the generator's rule for every commission type)",
    "progressive": "1.5 % of the part up to 250,000 IRR, 2 % of the part to 1,000,000, 3 % above",
    "tiered": "by the merchant's monthly volume: 2.5 % under 5 B IRR, 2 % from 5 B, 1.5 % from 50 B",
}
MONTH_DAYS = 30
MIN_PROJECTION_MINUTES = 60  # a projection never scales up less than an hour of history


def _floor_bp(amount_bp: np.ndarray) -> np.ndarray:
    """Whole rials of amount x rate, given amount x rate-in-bp (exact for integer amounts)."""
    return np.floor(amount_bp / 10_000)


def flat(amount: np.ndarray) -> np.ndarray:
    """Commission of each amount under the flat scheme."""
    return _floor_bp(amount * FLAT_BP)


def progressive(amount: np.ndarray) -> np.ndarray:
    """Commission of each amount under the progressive (marginal bands) scheme."""
    total = np.zeros(len(amount))
    lower = 0.0
    for upper, bp in PROGRESSIVE_BANDS:
        total += np.clip(amount - lower, 0.0, upper - lower) * bp
        lower = upper
    return _floor_bp(total)


def tier_rates(monthly_volume: np.ndarray) -> np.ndarray:
    """Rate in bp of each monthly volume under the tiered scheme."""
    starts = np.array([start for start, _ in TIERS])
    rates = np.array([bp for _, bp in TIERS])
    return rates[np.searchsorted(starts, monthly_volume, side="right") - 1]


def tiered(amount: np.ndarray, monthly_volume: np.ndarray, merchant: np.ndarray | None = None) -> np.ndarray:
    """Commission of each amount under the tiered scheme, given its merchant's monthly volume.

    `monthly_volume` is one per amount, or, with `merchant` (each amount's
    merchant code), one per merchant code: one tier search per merchant then.
    """
    rates = tier_rates(monthly_volume)
    return _floor_bp(amount * (rates if merchant is None else rates[merchant]))


def monthly_volume(merchants: History) -> pd.Series:
    """Return each merchant's amount projected to 30 days (merchant_id -> IRR), from the merchant table.

    The projection divides the merchant's total by the minutes the history
    covers (its first minute to now, at least an hour) and scales to MONTH_DAYS.
    """
    frame = merchants.frame
    if not merchants.merchant_table:
        raise ValueError("monthly volume needs the merchant table")
    codes = frame["merchant_id"].cat.codes.to_numpy()
    names = frame["merchant_id"].cat.categories
    totals = np.bincount(codes, weights=frame["amount"].to_numpy(), minlength=len(names))
    present = np.flatnonzero(np.bincount(codes, minlength=len(names)))
    covered = max(merchants.end_minute + 1 - merchants.first_minute, MIN_PROJECTION_MINUTES)
    scale = MONTH_DAYS * DAY_MINUTES / covered
    return pd.Series(totals[present] * scale, index=pd.Index(names[present], dtype=object), name="monthly_volume")


def what_if(frame: pd.DataFrame, volume: pd.Series) -> pd.DataFrame:
    """Return actual commission vs each scheme's, by actual commission type, then "all".

    `frame`: amount, commission_amount, commission_type, merchant_id of the
    transactions; rows with an unknown amount are left out. A merchant absent
    from `volume` counts as volume 0 (the highest tier rate). Columns:
    commission_type, transactions, amount, actual (known commissions), flat,
    progressive, tiered.
    """
    amount = frame["amount"].to_numpy()
    known = np.isfinite(amount)
    rows = slice(None) if known.all() else known  # no copies in the usual case
    amount = amount[rows]
    merchant = frame["merchant_id"].cat
    per_code = volume.reindex(pd.Index(merchant.categories, dtype=object)).fillna(0.0).to_numpy()
    values = {
        "amount": amount,
        "actual": np.nan_to_num(frame["commission_amount"].to_numpy()[rows]),
        "flat": flat(amount),
        "progressive": progressive(amount),
        "tiered": tiered(amount, per_code, merchant.codes.to_numpy()[rows]),
    }
    types = frame["commission_type"].cat
    codes = types.codes.to_numpy()[rows]
    k = len(types.categories)
    count = np.bincount(codes, minlength=k)
    sums = {name: np.bincount(codes, weights=v, minlength=k) for name, v in values.items()}
    present = np.flatnonzero(count)
    out = pd.DataFrame(
        {
            "commission_type": [*(str(types.categories[c]) or MISSING for c in present), "all"],
            "transactions": [*count[present].tolist(), int(count.sum())],
            **{name: [*sums[name][present].tolist(), float(sums[name].sum())] for name in values},
        }
    )
    return out.astype({"transactions": np.int64, **{name: np.float64 for name in values}})


def what_if_long(table: pd.DataFrame) -> pd.DataFrame:
    """The "all" row of `what_if` laid out long for a chart: scheme, commission, ratio (of the amount)."""
    total = table[table["commission_type"] == "all"].iloc[0]
    names = ["actual", *SCHEMES]
    amount = float(total["amount"])
    return pd.DataFrame(
        {
            "scheme": names,
            "commission": [float(total[n]) for n in names],
            "ratio": [float(total[n]) / amount if amount else np.nan for n in names],
        }
    )


def per_minute_by_type(history: History) -> pd.DataFrame:
    """Return commission by bin and commission type: time, commission_type, commission, per_minute.

    Bins as `history.time_bins`; `per_minute` is the bin's commission divided
    by its minutes. Types absent from the rows are left out; every bin appears
    once per type present, all bins of one type together, in time order.
    """
    bins = time_bins(history)
    frame = history.frame
    types = frame["commission_type"].cat
    k = len(types.categories)
    nb = len(bins.starts)
    inside = bins.index >= 0
    rows = slice(None) if inside.all() else inside  # no copies in the usual case
    cell = bins.index[rows] * k + types.codes.to_numpy()[rows]  # one pass for every type
    sums = np.bincount(cell, weights=frame["commission"].to_numpy()[rows], minlength=nb * k).reshape(nb, k)
    present = np.flatnonzero(np.bincount(types.codes.to_numpy()[rows], minlength=k))
    nt = len(present)
    values = sums[:, present].T.ravel()
    return pd.DataFrame(
        {
            "time": np.tile(to_datetime(bins.starts), nt),
            "commission_type": np.repeat([str(types.categories[c]) or MISSING for c in present], nb),
            "commission": values,
            "per_minute": values / bins.minutes,
        }
    )


def ratio_by_category(frame: pd.DataFrame) -> pd.DataFrame:
    """Return commission / amount by merchant category (merchant_category, amount, commission_amount).

    Over rows where both amounts are known, and valid ones only when the
    frame has error_mask (money figures count valid transactions only).
    Columns merchant_category, transactions, amount, commission, ratio;
    sorted by ratio, highest first.
    """
    amount = frame["amount"].to_numpy()
    commission = frame["commission_amount"].to_numpy()
    known = np.isfinite(amount) & np.isfinite(commission)
    if "error_mask" in frame:
        known &= frame["error_mask"].to_numpy() == 0
    rows = slice(None) if known.all() else known  # no copies in the usual case
    cat = frame["merchant_category"].cat
    codes = cat.codes.to_numpy()[rows]
    k = len(cat.categories)
    count = np.bincount(codes, minlength=k)
    amounts = np.bincount(codes, weights=amount[rows], minlength=k)
    commissions = np.bincount(codes, weights=commission[rows], minlength=k)
    present = np.flatnonzero(count)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(amounts[present] > 0, commissions[present] / amounts[present], np.nan)
    out = pd.DataFrame(
        {
            "merchant_category": [str(cat.categories[i]) or MISSING for i in present],
            "transactions": count[present].astype(np.int64),
            "amount": amounts[present],
            "commission": commissions[present],
            "ratio": ratio,
        }
    )
    return out.sort_values(["ratio", "merchant_category"], ascending=[False, True], ignore_index=True)


@dataclass(frozen=True)
class Windows:
    """Commission and transactions per (5-minute window, merchant code), sorted by window then code."""

    minute: np.ndarray
    code: np.ndarray
    commission: np.ndarray
    count: np.ndarray
    names: np.ndarray  # merchant id of each code

    def take(self, rows: np.ndarray) -> Windows:
        return Windows(self.minute[rows], self.code[rows], self.commission[rows], self.count[rows], self.names)


def merchant_windows(merchants: History) -> Windows:
    """Sum the merchant table per 5-minute window and merchant (over categories and commission types).

    Rows without a merchant id are left out. The input of `top_by_window` and `window_leaders`.
    """
    if not merchants.merchant_table:
        raise ValueError("merchant windows need the merchant table")
    frame = merchants.frame
    merchant = frame["merchant_id"].cat
    k = max(len(merchant.categories), 1)
    keys = frame["minute"].to_numpy() * k + merchant.codes.to_numpy()
    keys, (commission, count) = sum_by(keys, frame["commission"].to_numpy(), frame["count"].to_numpy())
    windows = Windows(keys // k, keys % k, commission, count, np.asarray(merchant.categories, dtype=object))
    return windows.take(windows.code > 0)  # code 0: no merchant id


def _starts(minute: np.ndarray) -> np.ndarray:
    """Index of the first row of each run of equal (sorted) minutes."""
    return np.flatnonzero(np.concatenate(([True], minute[1:] != minute[:-1]))) if len(minute) else minute[:0]


def _name_order(names: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (codes in merchant-id order, each code's rank in that order)."""
    order = np.argsort(names.astype(str), kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    return order, rank


def _ranked(w: Windows) -> np.ndarray:
    """Row order: by window, then commission (largest first), then merchant id."""
    return np.lexsort((_name_order(w.names)[1][w.code], -w.commission, w.minute))


def top_by_window(w: Windows, n: int = 3, windows: int = 12) -> pd.DataFrame:
    """Return the top `n` merchants by commission in each of the latest `windows` 5-minute windows (of `w`).

    Columns window (start, UTC), rank, merchant_id, commission, transactions,
    share (of the window's commission); newest window first, ties by merchant id.
    """
    latest = w.minute[_starts(w.minute)][-windows:]  # rows are sorted by window
    w = w.take(w.minute >= latest[0]) if len(latest) else w
    w = w.take(_ranked(w))
    starts = _starts(w.minute)
    size = np.diff(np.append(starts, len(w.minute)))
    rank = np.arange(len(w.minute)) - np.repeat(starts, size) + 1
    total = np.repeat(np.add.reduceat(w.commission, starts) if len(starts) else w.commission[:0], size)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, w.commission / np.maximum(total, 1e-9), 0.0)
    out = pd.DataFrame(
        {
            "window": to_datetime(w.minute * MINUTE_MS),
            "rank": rank,
            "merchant_id": w.names[w.code],
            "commission": w.commission,
            "transactions": w.count.astype(np.int64),
            "share": share,
        }
    )
    out = out[out["rank"] <= n]
    return out.sort_values(["window", "rank"], ascending=[False, True], ignore_index=True)


def window_leaders(w: Windows, n: int = 10) -> pd.DataFrame:
    """Return the merchants that earned the most commission in the most 5-minute windows (of `w`).

    Columns merchant_id, windows_led, share (of the windows with commission),
    commission_led (their commission in the windows they led); at most `n`,
    most windows first, then commission, then merchant id. Ties for the lead
    of a window go to the smaller merchant id.
    """
    w = w.take(w.commission > 0)
    k = len(w.names)
    starts = _starts(w.minute)
    if len(starts):  # per window (rows sorted by window): the largest commission, then the smallest id
        size = np.diff(np.append(starts, len(w.minute)))
        top = w.commission == np.repeat(np.maximum.reduceat(w.commission, starts), size)
        order, rank = _name_order(w.names)
        leader = order[np.minimum.reduceat(np.where(top, rank[w.code], k), starts)]
        earned = np.maximum.reduceat(w.commission, starts)
    else:
        leader, earned = np.empty(0, dtype=np.int64), np.empty(0)
    led = np.bincount(leader, minlength=k)
    commission = np.bincount(leader, weights=earned, minlength=k)
    codes = np.flatnonzero(led)
    out = pd.DataFrame(
        {
            "merchant_id": w.names[codes].astype(object),
            "windows_led": led[codes].astype(np.int64),
            "share": led[codes] / max(len(starts), 1),
            "commission_led": commission[codes],
        }
    )
    out = out.sort_values(["windows_led", "commission_led", "merchant_id"], ascending=[False, False, True])
    return out.head(n).reset_index(drop=True)
