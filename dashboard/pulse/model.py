"""Who transacts: merchants and customers, and the original generator's distributions. Pure.

Beyond the original generator, a merchant keeps ONE category, home location
and commission type for its whole life, and a customer keeps one customer
type. Commission type is per merchant because it is a term of the merchant's
contract with Darooghe; it is drawn uniformly, as the original drew it per
event, so the three types still appear in equal shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np

from dashboard.core.schema import (
    COMMISSION_RATE,
    COMMISSION_TYPES,
    CUSTOMER_TYPES,
    MERCHANT_CATEGORIES,
    PAYMENT_METHODS,
    VAT_RATE,
)

CATEGORY_WEIGHTS: Final = MappingProxyType(
    {"retail": 2.0, "food_service": 6.0, "entertainment": 1.0, "transportation": 1.0, "government": 0.5}
)
PAYMENT_WEIGHTS: Final = MappingProxyType({"online": 0.50, "pos": 0.30, "mobile": 0.15, "nfc": 0.05})
#: (mu, sigma) of the lognormal amount in IRR, by merchant category.
AMOUNT_LOGNORMAL: Final = MappingProxyType(
    {
        "retail": (13.0, 0.75),
        "food_service": (12.8, 0.80),
        "entertainment": (13.2, 0.90),
        "transportation": (12.9, 0.70),
        "government": (12.5, 0.60),
    }
)


def charges(amount: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (commission, VAT) in whole rials of int64 `amount`s, as the original generator charged them.

    Same float arithmetic as its int(amount * 0.02) and int(amount * 0.09):
    truncation of a positive float. The only definition of the formula.
    """
    return (amount * COMMISSION_RATE).astype(np.int64), (amount * VAT_RATE).astype(np.int64)


DEVICE_LIBRARY: Final[tuple[dict[str, str], ...]] = (
    {"os": "Android", "app_version": "2.4.1", "device_model": "Samsung Galaxy S25"},
    {"os": "iOS", "app_version": "3.1.0", "device_model": "iPhone 15"},
    {"os": "Android", "app_version": "1.9.5", "device_model": "Google Pixel 6"},
)
#: Payment methods that carry device_info; the others send {}.
DEVICE_METHODS: Final = frozenset({"online", "mobile"})
TEHRAN: Final = (35.7219, 51.3347)
HOME_SPREAD_DEG: Final = 0.1
EVENT_SPREAD_DEG: Final = 0.005
#: Share of events left pending (not in the original; a small share keeps the status column honest).
PENDING_RATE: Final = 0.01

CATEGORY_P: Final = np.array([CATEGORY_WEIGHTS[c] for c in MERCHANT_CATEGORIES]) / sum(CATEGORY_WEIGHTS.values())
PAYMENT_P: Final = np.array([PAYMENT_WEIGHTS[m] for m in PAYMENT_METHODS])
AMOUNT_MU: Final = np.array([AMOUNT_LOGNORMAL[c][0] for c in MERCHANT_CATEGORIES])
AMOUNT_SIGMA: Final = np.array([AMOUNT_LOGNORMAL[c][1] for c in MERCHANT_CATEGORIES])


@dataclass(frozen=True)
class Merchant:
    """One merchant: a fixed category, home location and commission type."""

    merchant_id: str
    category: str
    lat: float
    lng: float
    commission_type: str


@dataclass(frozen=True)
class Population:
    """All merchants and customers as column arrays (index i is merch_{i+1} / cust_{i+1}).

    Categories, commission types and customer types are stored as indexes into
    the tuples of `dashboard.core.schema`.
    """

    merchant_ids: tuple[str, ...]
    merchant_category: np.ndarray
    merchant_lat: np.ndarray
    merchant_lng: np.ndarray
    merchant_commission: np.ndarray
    customer_ids: tuple[str, ...]
    customer_type: np.ndarray

    @classmethod
    def build(cls, merchant_count: int, customer_count: int, rng: np.random.Generator) -> Population:
        """Draw a population; the same rng state gives the same population."""
        categories = category_quota(merchant_count)
        rng.shuffle(categories)
        return cls(
            merchant_ids=tuple(f"merch_{i}" for i in range(1, merchant_count + 1)),
            merchant_category=categories,
            merchant_lat=TEHRAN[0] + rng.uniform(-HOME_SPREAD_DEG, HOME_SPREAD_DEG, merchant_count),
            merchant_lng=TEHRAN[1] + rng.uniform(-HOME_SPREAD_DEG, HOME_SPREAD_DEG, merchant_count),
            merchant_commission=rng.integers(0, len(COMMISSION_TYPES), merchant_count),
            customer_ids=tuple(f"cust_{i}" for i in range(1, customer_count + 1)),
            customer_type=rng.integers(0, len(CUSTOMER_TYPES), customer_count),
        )

    def merchant(self, index: int) -> Merchant:
        """Return merchant number `index` (0-based) as a readable record."""
        return Merchant(
            merchant_id=self.merchant_ids[index],
            category=MERCHANT_CATEGORIES[self.merchant_category[index]],
            lat=float(self.merchant_lat[index]),
            lng=float(self.merchant_lng[index]),
            commission_type=COMMISSION_TYPES[self.merchant_commission[index]],
        )

    def describe(self) -> dict[str, Any]:
        """Merchants per category, for the start-up log line."""
        counts = np.bincount(self.merchant_category, minlength=len(MERCHANT_CATEGORIES))
        return dict(zip(MERCHANT_CATEGORIES, counts.tolist(), strict=True))


def category_quota(merchant_count: int) -> np.ndarray:
    """Return category indexes for `merchant_count` merchants, in proportion to CATEGORY_WEIGHTS.

    Rounded to whole merchants with at least one per category, so even
    50 merchants match the weights as closely as whole numbers allow (the
    original drew the category per event, which let merchants change category).
    """
    k = len(MERCHANT_CATEGORIES)
    if merchant_count < k:
        raise ValueError(f"need at least {k} merchants, got {merchant_count}")
    exact = CATEGORY_P * merchant_count
    counts = np.maximum(np.floor(exact), 1).astype(np.int64)
    while counts.sum() < merchant_count:  # the largest shortfall gets the next merchant
        counts[np.argmax(exact - counts)] += 1
    while counts.sum() > merchant_count:  # the minimum of one overshot: take from the largest surplus
        counts[np.argmin(np.where(counts > 1, exact - counts, np.inf))] -= 1
    return np.repeat(np.arange(k), counts)
