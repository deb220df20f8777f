"""Which transactions feed the detectors, and in what shape. Pure.

A transaction feeds the detectors when its transaction_id, customer_id,
timestamp and amount decoded, and its timestamp passed the time rule: the
detectors work in event time, and an ERR_TIME timestamp (hours in the future,
days in the past) would either be refused as too late or, worse, push the
customer's clock hours ahead. Other broken rules do not keep it from the
velocity and geo rules: an ERR_AMOUNT total or an ERR_DEVICE device says
nothing against the time and place of a payment, and fraudsters' payments
are often malformed. But only a valid transaction's amount is trusted: an
invalid one neither raises nor feeds the amount-anomaly rule, so no single
message (1.8e19 IRR, say) can blind that rule for a customer.
Status does not matter either: declined attempts count (card testing is a
velocity pattern).
"""

from __future__ import annotations

from typing import NamedTuple

from dashboard.core.schema import ERR_TIME
from dashboard.core.validation import Checked, PlainTransaction, Transaction


class FraudInput(NamedTuple):
    """The fields the detectors read, for transactions decoded without a `Transaction`."""

    transaction_id: str
    customer_id: str
    timestamp_ms: int
    amount: int | float | None
    lat: float | None = None
    lng: float | None = None


def detector_input(checked: Checked) -> Transaction | FraudInput | None:
    """The transaction of a full `check` result if it may feed the detectors (see module docstring), else None."""
    tx = checked.transaction
    if tx is None or tx.transaction_id is None or tx.customer_id is None:
        return None
    if tx.timestamp_ms is None or tx.amount is None:
        return None
    if any(v.code == ERR_TIME for v in checked.violations):
        return None
    if checked.violations:  # invalid: its amount is not trusted (see the module docstring)
        return FraudInput(tx.transaction_id, tx.customer_id, tx.timestamp_ms, None, tx.lat, tx.lng)
    return tx


def plain_input(tx: PlainTransaction) -> FraudInput:
    """The detector input of a transaction from `validation.decode_plain` (which passed every rule).

    `decode_plain` converted the timestamp as `check` does, so both paths give
    the same event time.
    """
    ts_ms = tx.timestamp_ms
    location = tx.location
    if location is None:
        return FraudInput(tx.transaction_id, tx.customer_id, ts_ms, tx.amount)
    return FraudInput(tx.transaction_id, tx.customer_id, ts_ms, tx.amount, location.lat, location.lng)
