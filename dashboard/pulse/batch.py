"""A batch of events between drawing and producing: records, Kafka timestamps, injected codes. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import numpy as np
import orjson

from dashboard.schema import INJECTED_HEADER

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Message(NamedTuple):
    """One Kafka message to produce: key, JSON value, Kafka timestamp and the rules broken on purpose."""

    key: bytes
    value: bytes
    timestamp_ms: int
    injected: tuple[str, ...] = ()

    def headers(self) -> list[tuple[str, str | bytes | None]] | None:
        """Kafka headers: INJECTED_HEADER with the comma-separated codes, or None for a clean event."""
        return [(INJECTED_HEADER, ",".join(self.injected).encode())] if self.injected else None


@dataclass
class Batch:
    """Events before encoding; the three lists are index-aligned.

    Records are plain dicts in the order of DATA.md's field table. Stages
    replace nested dicts (location, device_info) rather than mutate them.
    """

    records: list[dict[str, Any]]
    kafka_ms: list[int]
    injected: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.records)

    def sort(self) -> None:
        """Restore Kafka-timestamp order after a stage inserted events (stable)."""
        order = sorted(range(len(self.records)), key=self.kafka_ms.__getitem__)
        self.records = [self.records[i] for i in order]
        self.kafka_ms = [self.kafka_ms[i] for i in order]
        self.injected = [self.injected[i] for i in order]

    def encode(self) -> list[Message]:
        """Serialise with orjson, keyed by customer_id."""
        dumps = orjson.dumps
        return [
            Message(r["customer_id"].encode(), dumps(r), ms, codes)
            for r, ms, codes in zip(self.records, self.kafka_ms, self.injected, strict=True)
        ]


class Pattern(Protocol):
    """A fraud pattern: rewrites a batch in place (may insert events, then must call `batch.sort()`)."""

    def apply(self, batch: Batch, rng: np.random.Generator) -> None:
        """Rewrite `batch`, drawing randomness only from `rng`."""


def iso_utc(us: int) -> str:
    """Format epoch microseconds as ISO-8601 UTC with Z; the fraction is absent when zero."""
    return (_EPOCH + timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")


def iso_utc_many(event_us: np.ndarray) -> list[str]:
    """Vectorised `iso_utc` for an int64 array of epoch microseconds."""
    text = np.datetime_as_string(event_us.astype("datetime64[us]"), unit="us").tolist()
    whole = (event_us % 1_000_000 == 0).tolist()
    return [t[:-7] + "Z" if w else t + "Z" for t, w in zip(text, whole, strict=True)]
