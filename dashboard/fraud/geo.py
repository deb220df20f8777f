"""Geographical impossibility: two transactions of one customer far apart within a few minutes. Pure."""

from __future__ import annotations

import math
from typing import Any

from dashboard.core.schema import FRAUD_GEO
from dashboard.fraud.rules import DEFAULT_LIMITS, EARTH_RADIUS_KM, Alert, Limits, TransactionLike
from dashboard.fraud.windows import CustomerWindows, Recent

_RAD = math.pi / 180.0
_DIAMETER_KM = 2.0 * EARTH_RADIUS_KM


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in km between two points in degrees (sphere of radius EARTH_RADIUS_KM)."""
    return _haversine(lat1 * _RAD, lng1 * _RAD, math.cos(lat1 * _RAD), lat2 * _RAD, lng2 * _RAD, math.cos(lat2 * _RAD))


def _haversine(phi1: float, lam1: float, cos1: float, phi2: float, lam2: float, cos2: float) -> float:
    """Haversine on radians with the cosines of the latitudes precomputed."""
    a = math.sin((phi2 - phi1) / 2.0) ** 2 + cos1 * cos2 * math.sin((lam2 - lam1) / 2.0) ** 2
    return _DIAMETER_KM * math.asin(math.sqrt(min(1.0, a)))


#: What the geo window keeps per event: time (ms), transaction id, latitude and longitude in radians, cos(latitude).
#: A window shared with the velocity rule (FraudDetector) also holds unlocated events: (time, id, None, None, None).
_Point = tuple[int, str, float, float, float]


class GeoDetector:
    """Alert when a transaction lies more than `max_km` from another of the same customer less than `window_ms` apart.

    "Within 5 minutes" means |t1 - t2| < window_ms: 4m59.999s apart is within,
    5m00.000s is not; the distance must exceed `max_km` strictly. The two
    events may arrive in either order (up to `lateness_ms` out of order).
    Each transaction that has such a partner raises one alert naming the pair;
    of several partners the farthest is named (the newest of equally far ones). Transactions without both
    coordinates are skipped.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.max_km, self.window_ms = limits.geo_km, limits.geo_window_ms
        self.near = self.max_km / EARTH_RADIUS_KM  # radians
        self.windows: CustomerWindows[_Point] = CustomerWindows(
            self.window_ms, limits.lateness_ms, limits.max_kept, max_customers=limits.max_customers
        )

    def observe(self, tx: TransactionLike) -> Alert | None:
        """Add `tx` to its customer's window; return the alert it raises, if any."""
        customer, tid, t, lat, lng = tx.customer_id, tx.transaction_id, tx.timestamp_ms, tx.lat, tx.lng
        if customer is None or tid is None or t is None or lat is None or lng is None:
            return None
        phi = lat * _RAD
        placed = self.windows.insert(customer, t, (t, tid, phi, lng * _RAD, math.cos(phi)))
        if placed is None:
            return None
        return self.judge(customer, *placed)

    def judge(self, customer: str, recent: Recent[Any], i: int) -> Alert | None:
        """The alert of the located event just inserted at `recent.events[i]`, if any; compares it with every other.

        Unlocated entries (None coordinates) are passed over.
        """
        events = recent.events
        t, tid, phi, lam, cos_phi = events[i]
        window = self.window_ms
        near = self.near
        best_km = self.max_km
        partner: tuple[int, str] | None = None
        for j in range(len(events) - 1, -1, -1):  # newest first; stop at the window's far end
            tj, tid2, phi2, lam2, cos2 = events[j]
            if tj <= t - window:
                break
            if j == i or tj >= t + window or phi2 is None:
                continue
            # Cheap upper bound (meridian arc, then parallel arc at the wider latitude): most pairs stop here.
            if abs(phi2 - phi) + (cos2 if cos2 > cos_phi else cos_phi) * abs(lam2 - lam) <= near:
                continue
            km = _haversine(phi, lam, cos_phi, phi2, lam2, cos2)
            if km > best_km:
                best_km, partner = km, (tj, tid2)
        if partner is None:
            return None
        tj, tid2 = partner
        ids = (tid2, tid) if tj <= t else (tid, tid2)
        evidence = {"distance_km": round(best_km, 3), "minutes": round(abs(t - tj) / 60_000, 3)}
        return Alert(FRAUD_GEO, customer, ids, evidence, max(t, tj))


def fit_box(recent: Recent[Any]) -> None:
    """Fit `recent`'s box to the located entries it holds (see dashboard.fraud.detector).

    An entry with a NaN coordinate is every other's partner at the antipode
    (`_haversine` clamps the NaN to 1), so it makes the box NaN (in `hi_phi`,
    which growing never overwrites), and the rule runs on every event until
    that entry leaves.
    """
    lo_phi = lo_lam = math.inf
    hi_phi = hi_lam = -math.inf
    hi_cos = 0.0
    for _, _, phi, lam, cos_phi in recent.events:
        if phi is None:
            continue
        if math.isnan(phi) or math.isnan(lam):
            hi_phi = math.nan
            break
        lo_phi = min(lo_phi, phi)
        hi_phi = max(hi_phi, phi)
        lo_lam = min(lo_lam, lam)
        hi_lam = max(hi_lam, lam)
        hi_cos = max(hi_cos, cos_phi)
    recent.lo_phi, recent.hi_phi, recent.lo_lam, recent.hi_lam, recent.hi_cos = lo_phi, hi_phi, lo_lam, hi_lam, hi_cos
