"""The three fraud rules: default thresholds, the transaction shape they read, the Alert they raise. Pure.

The defaults are DATA.md's "Fraud signals" table. The Pulse generator reads
them too, so that its organic traffic stays below them (see
`dashboard.pulse.inject_fraud`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from dashboard.core.records import encode_record
from dashboard.core.timeunits import DAY_MS, MINUTE_MS
from dashboard.core.validation import ms_to_iso

#: Velocity: more than VELOCITY_MAX_COUNT transactions in a window (t - VELOCITY_WINDOW_MS, t].
VELOCITY_MAX_COUNT: Final = 5
VELOCITY_WINDOW_MS: Final = 2 * MINUTE_MS
#: Geographical impossibility: more than GEO_MAX_KM apart, less than GEO_WINDOW_MS apart.
GEO_MAX_KM: Final = 50.0
GEO_WINDOW_MS: Final = 5 * MINUTE_MS
#: Amount anomaly: amount > AMOUNT_RATIO x the average of at least MIN_HISTORY earlier transactions.
AMOUNT_RATIO: Final = 10
MIN_HISTORY: Final = 5
#: The amount rule forgets a customer unseen for this long (event time; the worker sets FRAUD_LOOKBACK_DAYS)...
AMOUNT_IDLE_MS: Final = 7 * DAY_MS
#: A detector keeps the windows, and the averages, of at most this many customers, least recently seen dropped first
#: (FRAUD_MAX_CUSTOMERS).
AMOUNT_MAX_CUSTOMERS: Final = 200_000
#: How much older than the customer's newest event an event may be and still join the windows.
LATENESS_MS: Final = MINUTE_MS
#: Most events kept per customer and window (a bot's flood cannot grow the state without bound).
MAX_KEPT: Final = 64
#: Mean Earth radius (IUGG), km.
EARTH_RADIUS_KM: Final = 6371.0088


@dataclass(frozen=True, slots=True)
class Limits:
    """The rules' thresholds and the bounds of their state: one set for every detector (defaults: the above).

    velocity_count, velocity_window_ms: the velocity rule; geo_km,
    geo_window_ms: the geographical rule; amount_ratio, min_history: the
    amount rule, which forgets customers idle for amount_idle_ms; lateness_ms,
    max_kept: how late an event may join the windows, and how many events a
    customer's window keeps; max_customers: customers whose windows, and
    whose averages, a detector keeps at most (least recently seen dropped).
    """

    velocity_count: int = VELOCITY_MAX_COUNT
    velocity_window_ms: int = VELOCITY_WINDOW_MS
    geo_km: float = GEO_MAX_KM
    geo_window_ms: int = GEO_WINDOW_MS
    amount_ratio: float = AMOUNT_RATIO
    min_history: int = MIN_HISTORY
    amount_idle_ms: int = AMOUNT_IDLE_MS
    max_customers: int = AMOUNT_MAX_CUSTOMERS
    lateness_ms: int = LATENESS_MS
    max_kept: int = MAX_KEPT

    def __post_init__(self) -> None:
        if self.min_history < 1 or self.amount_idle_ms < 0 or self.max_customers < 1:
            raise ValueError("need min_history >= 1, amount_idle_ms >= 0 and max_customers >= 1")
        if self.max_kept <= self.velocity_count:
            raise ValueError("max_kept must exceed velocity_count")


#: DATA.md's thresholds with the default bounds.
DEFAULT_LIMITS: Final = Limits()


class TransactionLike(Protocol):
    """What the detectors read of a transaction; None marks a field that failed to decode.

    `dashboard.core.validation.Transaction`, `dashboard.fraud.FraudInput` and any
    object (msgspec struct, named tuple) with these attributes qualify.
    """

    @property
    def transaction_id(self) -> str | None: ...

    @property
    def customer_id(self) -> str | None: ...

    @property
    def timestamp_ms(self) -> int | None:
        """Event time (the transaction's timestamp field), epoch milliseconds."""

    @property
    def amount(self) -> int | float | None: ...

    @property
    def lat(self) -> float | None: ...

    @property
    def lng(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Alert:
    """One fraud signal: the rule, the customer, the transactions involved and the evidence.

    `transaction_ids` are in event-time order; `event_time_ms` is the event
    time of the latest of them. `evidence` holds, by rule:
    velocity: count, span_seconds; geo_impossible: distance_km, minutes;
    amount_anomaly: amount, average, ratio (None when the average is 0), history.
    Treat it as read-only.
    """

    rule: str
    customer_id: str
    transaction_ids: tuple[str, ...]
    evidence: dict[str, Any] = field(hash=False)
    event_time_ms: int

    def to_json(self, source: dict[str, Any] | None = None) -> bytes:
        """The darooghe.fraud_alerts record: the fields above, `event_time` in ISO-8601 UTC, and `source`.

        `source` names the message that raised the alert (topic, partition, offset, timestamp).
        At most 64 KB: hostile ids are clamped (`dashboard.core.records`).
        """
        record: dict[str, Any] = {
            "rule": self.rule,
            "customer_id": self.customer_id,
            "transaction_ids": self.transaction_ids,
            "event_time": ms_to_iso(self.event_time_ms),
            "event_time_ms": self.event_time_ms,
            "evidence": self.evidence,
        }
        if source is not None:
            record["source"] = source
        return encode_record(record)
