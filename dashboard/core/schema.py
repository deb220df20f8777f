"""The shape of the Darooghe stream: topics, enums, error codes (see shared DATA.md)."""

from __future__ import annotations

from typing import Final, Literal, get_args

TRANSACTIONS_TOPIC: Final = "darooghe.transactions"
ERROR_TOPIC: Final = "darooghe.error_logs"
FRAUD_TOPIC: Final = "darooghe.fraud_alerts"
ROLLUPS_TOPIC: Final = "darooghe.rollups"

# Each enum is defined once, as a Literal type: the msgspec fast path decodes into these
# types, and the full check and every page use the value tuples derived from them.
MerchantCategory = Literal["retail", "food_service", "entertainment", "transportation", "government"]
PaymentMethod = Literal["online", "pos", "mobile", "nfc"]
Status = Literal["approved", "declined", "pending"]
CommissionType = Literal["flat", "progressive", "tiered"]
CustomerType = Literal["individual", "CIP", "business"]

MERCHANT_CATEGORIES: Final[tuple[str, ...]] = get_args(MerchantCategory)
PAYMENT_METHODS: Final[tuple[str, ...]] = get_args(PaymentMethod)
STATUSES: Final[tuple[str, ...]] = get_args(Status)
COMMISSION_TYPES: Final[tuple[str, ...]] = get_args(CommissionType)
CUSTOMER_TYPES: Final[tuple[str, ...]] = get_args(CustomerType)
FAILURE_REASONS: Final = (
    "cancelled",
    "insufficient_funds",
    "system_error",
    "fraud_prevented",
)
MOBILE_OSES: Final = ("iOS", "Android")
RISK_LEVELS: Final = range(1, 6)  # risk_level is an integer 1..5

#: Fields whose value must be one of a fixed set.
ENUM_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "merchant_category": MERCHANT_CATEGORIES,
    "payment_method": PAYMENT_METHODS,
    "status": STATUSES,
    "commission_type": COMMISSION_TYPES,
    "customer_type": CUSTOMER_TYPES,
}
ID_FIELDS: Final = ("transaction_id", "customer_id", "merchant_id")
AMOUNT_FIELDS: Final = ("amount", "vat_amount", "commission_amount", "total_amount")

ERR_AMOUNT: Final = "ERR_AMOUNT"
ERR_TIME: Final = "ERR_TIME"
ERR_DEVICE: Final = "ERR_DEVICE"
ERR_SCHEMA: Final = "ERR_SCHEMA"
ERROR_CODES: Final = (ERR_AMOUNT, ERR_TIME, ERR_DEVICE, ERR_SCHEMA)

#: Plain-language explanation of each rule, shown on the dashboard.
RULE_EXPLANATIONS: Final[dict[str, str]] = {
    ERR_AMOUNT: "total_amount must equal amount + vat_amount + commission_amount "
    "(exact on integers, 0.01 tolerance on fractions).",
    ERR_TIME: "The event timestamp may not lie in the future (beyond a small clock skew) "
    "nor more than 24 hours before the message's Kafka timestamp.",
    ERR_DEVICE: "A mobile payment must carry device_info.os equal to iOS or Android.",
    ERR_SCHEMA: "The message must be a UTF-8 JSON object with string ids, known enum values, "
    "non-negative numeric amounts and a risk_level of 1..5.",
}

#: Kafka header the Pulse generator sets to name the rules it broke on purpose.
INJECTED_HEADER: Final = "darooghe-injected"

#: Fraud rules of the real-time layer: the `rule` of a darooghe.fraud_alerts record (see dashboard.fraud).
FRAUD_VELOCITY: Final = "velocity"
FRAUD_GEO: Final = "geo_impossible"
FRAUD_AMOUNT: Final = "amount_anomaly"
FRAUD_RULES: Final = (FRAUD_VELOCITY, FRAUD_GEO, FRAUD_AMOUNT)

#: Plain-language explanation of each fraud rule, shown on the dashboard.
FRAUD_EXPLANATIONS: Final[dict[str, str]] = {
    FRAUD_VELOCITY: "More than 5 transactions of one customer within 2 minutes of event time.",
    FRAUD_GEO: "Two transactions of one customer more than 50 km apart within 5 minutes.",
    FRAUD_AMOUNT: "An amount above 10 times the customer's average over at least 5 earlier transactions.",
}

#: Kafka headers the Pulse generator sets on each event of an injected fraud pattern:
#: the rule the pattern should trigger, and the pattern's id (events of one burst share it).
FRAUD_HEADER: Final = "darooghe-fraud"
FRAUD_PATTERN_HEADER: Final = "darooghe-fraud-pattern"

#: What Darooghe charges per transaction (DATA.md): commission = int(2 % of amount), VAT = int(9 % of amount).
COMMISSION_RATE: Final = 0.02
VAT_RATE: Final = 0.09
