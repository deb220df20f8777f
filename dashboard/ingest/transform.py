"""Error records for darooghe.error_logs: pure functions, no Kafka."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from dashboard.core.validation import Checked, ms_to_iso


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
