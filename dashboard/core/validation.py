"""Decoding and validation of transaction messages: pure, no Kafka.

`check(value, ingestion_ms)` turns the raw bytes of one message into a typed
`Transaction` and the list of rules it violates. Bad input is a value, never an
exception: bytes that are not a JSON object come back as one ERR_SCHEMA
violation with an excerpt of the payload. The ingest worker and the dashboard
both call this module, so the error log and the screen always agree.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import Meta, Struct
from msgspec.structs import force_setattr

from dashboard.core.records import INT64_MAX, INT64_MIN, clip, show
from dashboard.core.schema import (
    AMOUNT_FIELDS,
    ENUM_FIELDS,
    ERR_AMOUNT,
    ERR_DEVICE,
    ERR_SCHEMA,
    ERR_TIME,
    ID_FIELDS,
    MOBILE_OSES,
    RISK_LEVELS,
    CommissionType,
    CustomerType,
    MerchantCategory,
    PaymentMethod,
    Status,
)
from dashboard.core.timeunits import DAY_MS

DEFAULT_SKEW_MS = 1_000
EXCERPT_BYTES = 200
_EPOCH_MS_THRESHOLD = 1e11  # numbers above this are epoch milliseconds, below are seconds
_AMOUNT_TOLERANCE = 0.01
#: A numeric string: ASCII digits, an optional sign, at most one decimal point (DATA.md), at most 30 characters.
NUMERIC_STRING_MAX = 30
_NUMERIC_STRING = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")

Number = int | float


# Violation, Transaction and Checked are frozen msgspec Structs, not frozen dataclasses: every invalid message
# builds one of each, and a frozen dataclass sets each field through object.__setattr__ (measured: 2.9 us for a
# Transaction, 0.5 us for a plain class; a Struct is built in C).


class Violation(Struct, frozen=True):
    """One broken rule: its code, a human message and the evidence behind it."""

    code: str
    message: str
    evidence: dict[str, Any] = {}


class Transaction(Struct, frozen=True, gc=False):  # scalars only: no cycle to collect
    """A decoded transaction; a field that failed conversion is None."""

    transaction_id: str | None
    timestamp_ms: int | None
    customer_id: str | None
    merchant_id: str | None
    merchant_category: str | None
    payment_method: str | None
    amount: Number | None
    commission_amount: Number | None
    vat_amount: Number | None
    total_amount: Number | None
    status: str | None
    commission_type: str | None
    customer_type: str | None
    risk_level: int | None
    failure_reason: str | None
    lat: float | None
    lng: float | None
    device_os: str | None


class Checked(Struct, frozen=True):
    """The outcome of `check`: the transaction (None if undecodable) and its violations."""

    transaction: Transaction | None
    violations: tuple[Violation, ...]
    #: The error codes, in rule order, one per violation (set from `violations`, whatever is passed).
    codes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        force_setattr(self, "codes", tuple(v.code for v in self.violations))

    @property
    def valid(self) -> bool:
        """True when no rule is violated."""
        return not self.violations


def excerpt(value: bytes | None, limit: int = EXCERPT_BYTES) -> str:
    """Return the first `limit` bytes of a payload as text, undecodable bytes escaped (at most 4 x `limit` chars)."""
    if not value:
        return ""
    return value[:limit].decode("utf-8", "backslashreplace")


#: The second `ms_to_iso` formatted last and its text up to the seconds: one tuple, replaced whole (thread-safe).
_last_second: list[tuple[int, str]] = [(-(2**63), "")]


def ms_to_iso(ms: int | None) -> str | None:
    """Format epoch milliseconds as ISO-8601 UTC with a Z suffix; None for None or a time beyond the calendar."""
    if ms is None:
        return None
    # time.gmtime, not datetime (3x slower), and %-formatting of its fields (an f-string took twice as long).
    # Kafka timestamps of a stream's records share their second in runs: the last one's text is kept.
    seconds, millis = divmod(int(ms), 1000)
    last = _last_second[0]
    if last[0] == seconds:
        return f"{last[1]}.{millis:03d}Z"
    try:
        t = time.gmtime(seconds)
    except (OverflowError, OSError, ValueError):
        return None
    if not 1 <= t.tm_year <= 9999:  # datetime's calendar
        return None
    text = "%04d-%02d-%02dT%02d:%02d:%02d" % t[:6]  # noqa: UP031 - half an f-string's time, measured
    _last_second[0] = (seconds, text)
    return f"{text}.{millis:03d}Z"


def parse_timestamp(value: Any) -> int | None:
    """Return epoch milliseconds for an ISO-8601 string or an epoch number, None if unparsable.

    A string without a zone is read as UTC; a number is epoch seconds, or epoch
    milliseconds when above 1e11. Booleans, NaN and infinities are unparsable,
    and so is any time whose UTC form lies outside the calendar (year 9999 at
    -14:00, epoch 1e20): a time that cannot be converted cannot be judged.
    """
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().upper())  # RFC 3339 allows a lowercase t and z
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            parsed = round(dt.timestamp() * 1000)
            datetime.fromtimestamp(parsed / 1000, tz=UTC)  # reject times whose UTC form is beyond the calendar
        except (OverflowError, OSError, ValueError):
            return None
        return parsed
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value):
        return None
    ms = value if abs(value) > _EPOCH_MS_THRESHOLD else value * 1000
    try:
        datetime.fromtimestamp(ms / 1000, tz=UTC)  # reject values beyond the calendar
    except (OverflowError, OSError, ValueError):
        return None
    return round(ms)


def _parse_number(value: Any) -> tuple[Number | None, str]:
    """Convert a JSON number or numeric string to a finite non-negative int or float; else (None, why).

    A numeric string is ASCII digits with an optional sign and at most one
    decimal point, at most NUMERIC_STRING_MAX characters (no Persian or
    full-width digits, underscores or spaces, which Python's int() would
    accept). Numbers outside the signed 64-bit range are refused, floats too.
    """
    if isinstance(value, bool) or value is None:
        return None, "is not a number"
    if isinstance(value, str):
        if len(value) > NUMERIC_STRING_MAX or _NUMERIC_STRING.fullmatch(value) is None:
            return None, "is not a plain numeric string"
        value = int(value) if "." not in value else float(value)
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return None, "is outside the signed 64-bit range"
        return (value, "") if value >= 0 else (None, "is negative")
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, "is not finite"
        if not INT64_MIN <= value <= INT64_MAX:
            return None, "is outside the signed 64-bit range"
        return (value, "") if value >= 0 else (None, "is negative")
    return None, "is not a number"


def _to_number(value: Any) -> Number | None:
    """Convert a JSON number or numeric string to a finite non-negative int or float (see `_parse_number`)."""
    return _parse_number(value)[0]


def _to_int(value: Any) -> int | None:
    """Convert an integral JSON number or numeric string to int."""
    number = _to_number(value)
    if isinstance(number, float):
        return int(number) if number.is_integer() else None
    return number


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _evidence_value(value: Any) -> str | int | float | None:
    """A message value as rule evidence: strings clipped, numbers as they are, anything else None."""
    if isinstance(value, str):
        return clip(value, 200)
    return value if isinstance(value, int | float) else None


def totals_match(amount: Number, vat: Number, commission: Number, total: Number) -> bool:
    """The amount rule: total = amount + VAT + commission, exact on integers, within 0.01 on fractions."""
    expected = amount + vat + commission
    if type(amount) is int and type(vat) is int and type(commission) is int and type(total) is int:
        return expected == total
    return abs(expected - total) <= _AMOUNT_TOLERANCE


def in_time(ts_ms: float, ingestion_ms: int, skew_ms: int) -> bool:
    """The time rule: not later than ingestion (plus the skew), not more than a day before it."""
    return ingestion_ms - DAY_MS <= ts_ms <= ingestion_ms + skew_ms


def needs_device(payment_method: str | None) -> bool:
    """The device rule applies: a mobile payment must name a mobile OS (MOBILE_OSES)."""
    return payment_method == "mobile"


def _schema(field_name: str, message: str, value: bytes | None = None) -> Violation:
    evidence: dict[str, Any] = {"field": field_name}
    if value is not None:
        evidence["excerpt"] = excerpt(value)
        evidence["payload_bytes"] = len(value)
    return Violation(ERR_SCHEMA, message, evidence)


def internal_error(exc: BaseException, value: bytes | None) -> Checked:
    """The judgement of a message whose handling raised `exc` (a bug): one ERR_SCHEMA violation naming it."""
    try:
        text = clip(str(exc), 200)
    except Exception:  # a hostile __str__
        text = ""
    name = type(exc).__name__
    return Checked(
        None,
        (
            Violation(
                ERR_SCHEMA,
                f"message could not be judged: {name}: {text}",
                {
                    "reason": "internal error",
                    "exception": name,
                    "excerpt": excerpt(value),
                    "payload_bytes": len(value or b""),
                },
            ),
        ),
    )


def check(value: bytes | None, ingestion_ms: int, skew_ms: int = DEFAULT_SKEW_MS) -> Checked:
    """Decode one message value and judge every rule against its Kafka timestamp.

    `ingestion_ms` is the message's own Kafka timestamp (epoch ms), so a replay
    validates the same way. Never raises on bad input. Hot loops try
    `decode_plain` first and call this only for messages it does not pass.
    """
    if not value:
        return Checked(
            None,
            (Violation(ERR_SCHEMA, "empty message", {"reason": "empty", "excerpt": ""}),),
        )
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        detail = clip(str(exc), 200)
        reason = "not UTF-8" if "utf-8" in detail.lower() else "not valid JSON"
        return Checked(
            None,
            (
                Violation(
                    ERR_SCHEMA,
                    f"payload is {reason} ({detail})",
                    {"reason": reason, "excerpt": excerpt(value), "payload_bytes": len(value)},
                ),
            ),
        )
    if not isinstance(record, dict):
        return Checked(
            None,
            (
                Violation(
                    ERR_SCHEMA,
                    "payload is not a JSON object",
                    {"reason": "not a JSON object", "excerpt": excerpt(value), "payload_bytes": len(value)},
                ),
            ),
        )
    return check_record(record, ingestion_ms, skew_ms, value)


def check_record(
    record: dict[str, Any],
    ingestion_ms: int,
    skew_ms: int = DEFAULT_SKEW_MS,
    raw: bytes | None = None,
) -> Checked:
    """Judge an already-decoded JSON object; see `check`."""
    violations: list[Violation] = []
    get = record.get

    ids: dict[str, str | None] = {}
    for name in ID_FIELDS:
        v = get(name)
        if isinstance(v, str) and v:
            ids[name] = v
        else:
            ids[name] = None
            what = "missing" if v is None else "not a non-empty string"
            violations.append(_schema(name, f"{name} is {what}", raw))

    enums: dict[str, str | None] = {}
    for name, allowed in ENUM_FIELDS.items():
        v = get(name)
        if isinstance(v, str) and v in allowed:
            enums[name] = v
        else:
            enums[name] = None
            violations.append(_schema(name, f"{name} {show(v)} is not one of {', '.join(allowed)}", raw))

    risk = _to_int(get("risk_level"))
    if risk is None or risk not in RISK_LEVELS:
        violations.append(
            _schema(
                "risk_level",
                f"risk_level {show(get('risk_level'))} is not an integer 1..5",
                raw,
            )
        )
        risk = None

    amounts: dict[str, Number | None] = {}
    for name in AMOUNT_FIELDS:
        v = get(name)
        number, why = _parse_number(v)
        amounts[name] = number
        if number is None:
            text = f"{name} is missing" if v is None else f"{name} {show(v)} {why}: not a non-negative number"
            violations.append(_schema(name, text, raw))

    amount, vat, commission, total = (amounts[n] for n in AMOUNT_FIELDS)
    if amount is not None and vat is not None and commission is not None and total is not None:
        _amount_rule(violations, amount, vat, commission, total)

    raw_ts = get("timestamp")
    ts_ms = parse_timestamp(raw_ts)
    _time_rule(violations, raw_ts, ts_ms, ingestion_ms, skew_ms)

    device = get("device_info")
    os_found = device.get("os") if isinstance(device, dict) else None
    device_os = os_found if isinstance(os_found, str) else None
    _device_rule(violations, enums["payment_method"], os_found, device_os)

    location = get("location")
    lat = lng = None
    if isinstance(location, dict):
        lat, lng = _to_float(location.get("lat")), _to_float(location.get("lng"))
    failure = get("failure_reason")

    transaction = Transaction(
        transaction_id=ids["transaction_id"],
        timestamp_ms=ts_ms,
        customer_id=ids["customer_id"],
        merchant_id=ids["merchant_id"],
        merchant_category=enums["merchant_category"],
        payment_method=enums["payment_method"],
        amount=amount,
        commission_amount=commission,
        vat_amount=vat,
        total_amount=total,
        status=enums["status"],
        commission_type=enums["commission_type"],
        customer_type=enums["customer_type"],
        risk_level=risk,
        failure_reason=failure if isinstance(failure, str) else None,
        lat=lat,
        lng=lng,
        device_os=device_os,
    )
    return Checked(transaction, tuple(violations))


# The rules beyond the schema, shared by `check_record` (any JSON object) and `check_plain` (a decoded struct):
# each appends its violation, if any, so both give the same judgement by construction.


def _amount_rule(violations: list[Violation], amount: Number, vat: Number, commission: Number, total: Number) -> None:
    if not totals_match(amount, vat, commission, total):
        violations.append(
            Violation(
                ERR_AMOUNT,
                "total_amount does not equal amount + vat_amount + commission_amount",
                {"expected_total": amount + vat + commission, "actual_total": total},
            )
        )


def _time_rule(violations: list[Violation], raw_ts: Any, ts_ms: int | None, ingestion_ms: int, skew_ms: int) -> None:
    if ts_ms is None:
        violations.append(
            Violation(
                ERR_TIME,
                "invalid timestamp format",
                {
                    "event_timestamp": _evidence_value(raw_ts),
                    "ingestion_timestamp": ms_to_iso(ingestion_ms),
                },
            )
        )
    elif not in_time(ts_ms, ingestion_ms, skew_ms):
        future = ts_ms > ingestion_ms
        violations.append(
            Violation(
                ERR_TIME,
                "timestamp is in the future" if future else "timestamp is more than 24 hours old",
                {
                    "event_timestamp": ms_to_iso(ts_ms),
                    "ingestion_timestamp": ms_to_iso(ingestion_ms),
                    "delta_ms": ts_ms - ingestion_ms,
                },
            )
        )


def _device_rule(violations: list[Violation], payment_method: str | None, os_found: Any, device_os: str | None) -> None:
    if needs_device(payment_method) and device_os not in MOBILE_OSES:
        violations.append(
            Violation(
                ERR_DEVICE,
                "mobile payment requires device_info.os iOS or Android",
                {
                    "payment_method": "mobile",
                    "device_os": _evidence_value(os_found) if isinstance(os_found, str | None) else show(os_found),
                },
            )
        )


_OSES = frozenset(MOBILE_OSES)
_fromiso = datetime.fromisoformat


NonNegative = Annotated[int, Meta(ge=0, le=INT64_MAX)]
NonEmpty = Annotated[str, Meta(min_length=1)]


# Every struct forbids unknown fields: msgspec skips an unknown field's value
# without the checks orjson applies (UTF-8, numbers beyond a double), so a
# message with one takes the full check, and the fast path never passes what
# the full check refuses. DATA.md's fields are all declared, so real traffic
# stays on the fast path.
class _Device(Struct, gc=False, forbid_unknown_fields=True):
    os: str | None = None
    app_version: str | None = None
    device_model: str | None = None


class _Location(Struct, gc=False, forbid_unknown_fields=True):
    lat: float
    lng: float


class PlainTransaction(Struct, gc=False, forbid_unknown_fields=True):
    """A transaction in its plainest valid form, decoded and type-checked in C by msgspec."""

    transaction_id: NonEmpty
    timestamp: str
    customer_id: NonEmpty
    merchant_id: NonEmpty
    merchant_category: MerchantCategory
    payment_method: PaymentMethod
    amount: NonNegative
    commission_amount: NonNegative
    vat_amount: NonNegative
    total_amount: NonNegative
    status: Status
    commission_type: CommissionType
    customer_type: CustomerType
    risk_level: Annotated[int, Meta(ge=RISK_LEVELS.start, le=RISK_LEVELS.stop - 1)]
    device_info: _Device | None = None
    location: _Location | None = None
    failure_reason: str | None = None
    timestamp_ms: int = -1  # set by decode_plain from `timestamp`, whatever the payload says


_plain_decoder = msgspec.json.Decoder(PlainTransaction)
_decode_plain = _plain_decoder.decode


def decode_plain(value: bytes, ingestion_ms: int, skew_ms: int = DEFAULT_SKEW_MS) -> PlainTransaction | None:
    """Fast path: the decoded transaction when `value` certainly passes every rule, else None.

    None means "judge it with `check`", not "invalid": a numeric-string amount,
    say, is valid but takes the slow path. Whenever this returns a transaction,
    `check` finds no violation (a property the unit tests check).
    """
    try:
        tx = _decode_plain(value)
    except Exception:  # DecodeError, RecursionError, UnicodeDecodeError...: the full check says why
        return None
    return tx if _passes(tx, ingestion_ms, skew_ms) else None


def _passes(tx: PlainTransaction, ingestion_ms: int, skew_ms: int) -> bool:
    """Whether a decoded transaction passes the amount, time and device rules; sets its timestamp_ms if so."""
    if not totals_match(tx.amount, tx.vat_amount, tx.commission_amount, tx.total_amount):
        return False
    try:
        dt = _fromiso(tx.timestamp)
        if dt.tzinfo is None:
            return False
        ts_ms = dt.timestamp() * 1000
    except (ValueError, OverflowError):
        return False
    if not in_time(ts_ms, ingestion_ms, skew_ms):
        return False
    if needs_device(tx.payment_method):
        device = tx.device_info
        if device is None or device.os not in _OSES:
            return False
    tx.timestamp_ms = round(ts_ms)
    return True


def check_plain(tx: PlainTransaction, ingestion_ms: int, skew_ms: int = DEFAULT_SKEW_MS) -> Checked:
    """`check` of a message that decoded as a PlainTransaction, built from the struct: the same judgement.

    Every field of such a message is well-typed (the struct's constraints are
    the schema's), so only the amount, time and device rules can fail, and
    they run here as in `check_record` (the same functions). This spares
    decoding the message a second time and walking the dict: Pulse's invalid
    events (a wrong total, a stale time, a mobile payment without an OS) all
    take this way. A unit property test checks it equals `check` on any bytes
    that decode.
    """
    violations: list[Violation] = []
    amount, vat, commission, total = tx.amount, tx.vat_amount, tx.commission_amount, tx.total_amount
    _amount_rule(violations, amount, vat, commission, total)
    raw_ts = tx.timestamp
    ts_ms = parse_timestamp(raw_ts)
    _time_rule(violations, raw_ts, ts_ms, ingestion_ms, skew_ms)
    device, location = tx.device_info, tx.location
    device_os = device.os if device is not None else None
    _device_rule(violations, tx.payment_method, device_os, device_os)
    transaction = Transaction(
        transaction_id=tx.transaction_id,
        timestamp_ms=ts_ms,
        customer_id=tx.customer_id,
        merchant_id=tx.merchant_id,
        merchant_category=tx.merchant_category,
        payment_method=tx.payment_method,
        amount=amount,
        commission_amount=commission,
        vat_amount=vat,
        total_amount=total,
        status=tx.status,
        commission_type=tx.commission_type,
        customer_type=tx.customer_type,
        risk_level=tx.risk_level,
        failure_reason=tx.failure_reason,
        lat=location.lat if location is not None else None,
        lng=location.lng if location is not None else None,
        device_os=device_os,
    )
    return Checked(transaction, tuple(violations))


def judge(
    value: bytes | None, ingestion_ms: int, skew_ms: int = DEFAULT_SKEW_MS
) -> tuple[PlainTransaction | None, Checked | None]:
    """Judge one message: (the fast-path transaction, None) when it passes, else (None, the full check).

    The one sequence the worker and the dashboard both use: msgspec decodes
    it into a PlainTransaction; one that passes the rules is the fast path,
    one that fails them is judged from the struct (`check_plain`), and what
    does not decode gets the full check (`check`). Never raises: an
    unexpected exception (a bug) becomes one ERR_SCHEMA violation naming it
    (`internal_error`), so no message can stop a reader.
    """
    try:
        if value:
            try:
                tx = _decode_plain(value)
            except Exception:  # DecodeError, RecursionError, UnicodeDecodeError...: the full check says why
                tx = None
            if tx is not None:
                if _passes(tx, ingestion_ms, skew_ms):
                    return tx, None
                return None, check_plain(tx, ingestion_ms, skew_ms)
        return None, check(value, ingestion_ms, skew_ms)
    except Exception as exc:
        return None, internal_error(exc, value)
