"""What the ingest worker makes of one message: its judgement, fraud alerts and records. Pure, no Kafka.

`transform` is the worker's whole per-message step (decode, validate, detect,
build records) and cannot raise: whatever a message holds, it yields its
records, and an unexpected exception (a bug) becomes one ERR_SCHEMA record
for that message naming the exception, so processing goes on. Every record
encodes to at most 64 KB (`dashboard.core.records`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from dashboard.core.records import encode_record, record_key
from dashboard.core.validation import Checked, internal_error, judge, ms_to_iso
from dashboard.fraud import FraudDetector, detector_input
from dashboard.fraud.rules import Alert
from dashboard.store.aggregate import MinuteAggregator

#: A record to produce: (key, value).
Record = tuple[bytes | None, bytes]


class Source(NamedTuple):
    """Where a message came from: topic, partition, offset and its Kafka timestamp (ms).

    A NamedTuple (built in C) rather than a frozen dataclass: every invalid message and alert builds one.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON shape stored in every error record."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": ms_to_iso(self.timestamp_ms),
            "timestamp_ms": self.timestamp_ms,
        }


class Outcome(NamedTuple):
    """What one message yields: its error codes (empty when valid), error records and alert records."""

    codes: tuple[str, ...]
    errors: list[Record]
    alerts: list[Record]


def error_records(checked: Checked, source: Source) -> list[Record]:
    """Return one (key, value) per violation of `checked`, keyed by transaction_id.

    The value is a JSON object of at most 64 KB with error_code, message,
    transaction_id (null when unknown), the rule's evidence and the message's
    source. The content depends only on the message, so a replay writes
    identical records.
    """
    if checked.valid:
        return []
    tx = checked.transaction
    tx_id = tx.transaction_id if tx is not None else None
    key = record_key(tx_id)
    src = source.as_dict()
    out = []
    for v in checked.violations:
        record = {"error_code": v.code, "message": v.message, "transaction_id": tx_id, **v.evidence, "source": src}
        out.append((key, encode_record(record)))
    return out


def alert_records(alerts: list[Alert], source: Source) -> list[Record]:
    """Return one (key, value) per alert, keyed by customer_id, each at most 64 KB."""
    src = source.as_dict()
    return [(record_key(alert.customer_id), alert.to_json(src)) for alert in alerts]


_NO_ALERTS: list[Alert] = []


def observe(
    detector: FraudDetector | None, value: bytes | None, ts: int, skew_ms: int
) -> tuple[Checked | None, list[Alert]]:
    """Judge one message and feed the detector (if any); return (None if valid else the full check, alerts).

    The fraud-state rebuild's step (no records). May raise only on a bug in
    the detector; `transform` is the isolated form.
    """
    tx, checked = judge(value, ts, skew_ms)
    if tx is not None:
        return None, (detector.observe_plain(tx) if detector is not None else _NO_ALERTS)
    assert checked is not None
    full = detector_input(checked) if detector is not None else None
    return checked, (detector.observe(full) if detector is not None and full is not None else _NO_ALERTS)


def transform(
    detector: FraudDetector | None,
    value: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    ts: int,
    skew_ms: int,
    rollup: MinuteAggregator | None = None,
) -> Outcome | None:
    """Judge one message, feed the detector and build its records; None when it is valid and raised no alert.

    `ts` is the message's Kafka timestamp (ms). Never raises: an unexpected
    exception becomes one ERR_SCHEMA record for this message (the
    exception's class and text, the source, a clamped excerpt). With
    `rollup`, the message also joins its minute's aggregates.
    """
    try:
        tx, checked = judge(value, ts, skew_ms)
        if tx is not None:  # valid: the hot path, inlined (observe's first branch)
            if rollup is not None:
                rollup.add_valid(partition, tx)
            if detector is None:
                return None
            alerts = detector.observe_plain(tx)
            if not alerts:
                return None
            return Outcome((), [], alert_records(alerts, Source(topic, partition, offset, ts)))
        assert checked is not None
        if rollup is not None:
            rollup.add_checked(partition, checked)
        full = detector_input(checked) if detector is not None else None
        alerts = detector.observe(full) if detector is not None and full is not None else _NO_ALERTS
        source = Source(topic, partition, offset, ts)
        return Outcome(checked.codes, error_records(checked, source), alert_records(alerts, source) if alerts else [])
    except Exception as exc:
        return crashed(exc, value, Source(topic, partition, offset, ts))


def crashed(exc: BaseException, value: bytes | None, source: Source) -> Outcome:
    """The outcome of a message whose handling raised `exc`: one ERR_SCHEMA record naming it."""
    checked = internal_error(exc, value)
    try:
        return Outcome(checked.codes, error_records(checked, source), [])
    except Exception:  # pragma: no cover - error_records cannot raise on this input; this keeps the promise
        record = {"error_code": checked.codes[0], "message": "message could not be judged", "offset": source.offset}
        return Outcome(checked.codes, [(None, orjson.dumps(record))], [])
