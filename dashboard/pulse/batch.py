"""A batch of events between drawing and producing: records, Kafka timestamps, injected codes, fraud labels. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol

import numpy as np
import orjson

from dashboard.core.schema import FRAUD_HEADER, FRAUD_PATTERN_HEADER, INJECTED_HEADER

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FraudLabel(NamedTuple):
    """The injected fraud pattern an event belongs to: the rule it should trigger and the pattern's id."""

    rule: str
    pattern: int


class Message(NamedTuple):
    """One Kafka message to produce: key, JSON value, Kafka timestamp, rules broken on purpose, fraud label."""

    key: bytes
    value: bytes
    timestamp_ms: int
    injected: tuple[str, ...] = ()
    fraud: FraudLabel | None = None

    def headers(self) -> list[tuple[str, str | bytes | None]] | None:
        """Kafka headers telling the truth, or None for an ordinary event.

        INJECTED_HEADER with the comma-separated codes of the broken rules;
        FRAUD_HEADER with the fraud rule and FRAUD_PATTERN_HEADER with the
        pattern id (decimal) on events of an injected fraud pattern.
        """
        headers: list[tuple[str, str | bytes | None]] = []
        if self.injected:
            headers.append((INJECTED_HEADER, ",".join(self.injected).encode()))
        if self.fraud is not None:
            headers.append((FRAUD_HEADER, self.fraud.rule.encode()))
            headers.append((FRAUD_PATTERN_HEADER, str(self.fraud.pattern).encode()))
        return headers or None


@dataclass
class Batch:
    """Events before encoding; the four lists are index-aligned (`fraud` defaults to no labels).

    Records are plain dicts in the order of DATA.md's field table. Stages
    replace nested dicts (location, device_info) rather than mutate them.
    """

    records: list[dict[str, Any]]
    kafka_ms: list[int]
    injected: list[tuple[str, ...]]
    fraud: list[FraudLabel | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.fraud:
            self.fraud = [None] * len(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def sort(self) -> None:
        """Restore Kafka-timestamp order after a stage inserted events (stable)."""
        order = sorted(range(len(self.records)), key=self.kafka_ms.__getitem__)
        self.records = [self.records[i] for i in order]
        self.kafka_ms = [self.kafka_ms[i] for i in order]
        self.injected = [self.injected[i] for i in order]
        self.fraud = [self.fraud[i] for i in order]

    def encode(self) -> list[Message]:
        """Serialise with orjson, keyed by customer_id."""
        dumps = orjson.dumps
        return [
            Message(r["customer_id"].encode(), dumps(r), ms, codes, label)
            for r, ms, codes, label in zip(self.records, self.kafka_ms, self.injected, self.fraud, strict=True)
        ]


class Pattern(Protocol):
    """A fraud stage: rewrites a batch in place after invalid injection (see `dashboard.pulse.events`).

    It keeps the number of events and the batch's time order (`batch.sort()`
    after moving events), leaves the events in `batch.injected` broken exactly
    as they are, and labels the events it makes fraudulent in `batch.fraud`.
    """

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
