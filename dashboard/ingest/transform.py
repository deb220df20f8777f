"""What the ingest worker makes of one message: its judgement, fraud alerts and error records. Pure, no Kafka."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from dashboard.core.validation import Checked, check, decode_plain, ms_to_iso
from dashboard.fraud import FraudDetector, detector_input, plain_input
from dashboard.fraud.rules import Alert


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from: topic, partition, offset and its Kafka timestamp (ms)."""

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


def error_records(checked: Checked, source: Source) -> list[tuple[bytes | None, bytes]]:
    """Return one (key, value) per violation of `checked`, keyed by transaction_id.

    The value is a JSON object with error_code, message, transaction_id (null
    when unknown), the rule's evidence and the message's source. The content
    depends only on the message, so a replay writes identical records.
    """
    if checked.valid:
        return []
    tx = checked.transaction
    tx_id = tx.transaction_id if tx is not None else None
    key = tx_id.encode() if tx_id else None
    src = source.as_dict()
    out = []
    for v in checked.violations:
        record = {"error_code": v.code, "message": v.message, "transaction_id": tx_id, **v.evidence, "source": src}
        out.append((key, orjson.dumps(record)))
    return out


_NO_ALERTS: list[Alert] = []


def observe(
    detector: FraudDetector | None, value: bytes | None, ts: int, skew_ms: int
) -> tuple[Checked | None, list[Alert]]:
    """Validate one message and feed the detector (if any); return (None if valid else the full check, alerts)."""
    tx = decode_plain(value, ts, skew_ms) if value else None
    if tx is not None:
        return None, (detector.observe(plain_input(tx)) if detector is not None else _NO_ALERTS)
    checked = check(value, ts, skew_ms)
    full = detector_input(checked) if detector is not None else None
    return checked, (detector.observe(full) if detector is not None and full is not None else _NO_ALERTS)
