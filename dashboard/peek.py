"""`python -m dashboard.peek [N]`: read N messages from the start of the topic and summarise.

Prints the first message as formatted JSON with its validation result (the
original notebook's "display one message"), then count, average amount, total
value, and counts by status, merchant category and payment method.
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from dashboard.core.cli import load_settings, setup_logging
from dashboard.core.settings import Settings
from dashboard.core.validation import Checked, check, excerpt
from dashboard.kafka.broker_state import BrokerState
from dashboard.kafka.config import preflight

logger = logging.getLogger(__name__)


@dataclass
class Summary:
    """Batch analysis of a list of transactions (the notebook's analyze_transactions)."""

    count: int = 0
    invalid: int = 0
    amounts: list[float] = field(default_factory=list)
    by_status: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_method: Counter[str] = field(default_factory=Counter)
    by_error: Counter[str] = field(default_factory=Counter)

    def add(self, checked: Checked) -> None:
        """Count one checked message."""
        self.count += 1
        if not checked.valid:
            self.invalid += 1
            self.by_error.update(checked.codes)
        tx = checked.transaction
        if tx is None:
            return
        if tx.amount is not None:
            self.amounts.append(float(tx.amount))
        self.by_status[tx.status or "(invalid)"] += 1
        self.by_category[tx.merchant_category or "(invalid)"] += 1
        self.by_method[tx.payment_method or "(invalid)"] += 1

    def render(self) -> str:
        """Return the summary as text."""
        total = sum(self.amounts)
        average = total / len(self.amounts) if self.amounts else 0.0
        lines = [
            f"Analyzed {self.count} transactions ({self.invalid} invalid)",
            f"Average amount: {average:,.2f} IRR",
            f"Total value: {total:,.0f} IRR",
        ]
        for title, counter in (
            ("status", self.by_status),
            ("merchant category", self.by_category),
            ("payment method", self.by_method),
            ("error code", self.by_error),
        ):
            lines.append(f"\nTransactions by {title}:")
            lines.extend(f"  {name:<20} {n}" for name, n in counter.most_common())
        return "\n".join(lines)


def describe(value: bytes | None, checked: Checked) -> str:
    """Return one message as formatted JSON followed by its validation result."""
    try:
        if value is not None and len(value) > 100_000:
            raise ValueError("too large to show whole")
        body = orjson.dumps(orjson.loads(value or b""), option=orjson.OPT_INDENT_2).decode()
    except (ValueError, TypeError):  # not JSON, too large, or nested too deep to print: escaped text
        body = excerpt(value, 2000) + (f"\n... [{len(value):,} bytes in all]" if value and len(value) > 2000 else "")
    if checked.valid:
        verdict = "Transaction is valid."
    else:
        verdict = f"Found {len(checked.violations)} validation errors:\n" + "\n".join(
            f"  - {v.code}: {v.message}" for v in checked.violations
        )
    return f"Sample transaction message:\n{body}\n\nValidation result:\n{verdict}"


def read_from_start(settings: Settings, n: int, timeout: float = 10.0) -> list[tuple[bytes | None, int]]:
    """Return up to `n` (value, kafka timestamp ms) from the start of the topic, without committing."""
    state = BrokerState(settings.bootstrap_servers, logger)
    consumer = Consumer(
        settings.kafka_config(
            group_id=f"darooghe-peek-{uuid.uuid4().hex[:8]}", enable_auto_commit=False, error_cb=state.on_error
        )
    )
    out: list[tuple[bytes | None, int]] = []
    try:
        topic = settings.transactions_topic
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            return out
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for msg in consumer.consume(min(1000, n - len(out)), 0.5):
                err = msg.error()
                if err is None:
                    out.append((msg.value(), msg.timestamp()[1]))
                    deadline = time.monotonic() + 2.0  # data flows: stop 2 s after it dries up
                elif err.code() != KafkaError._PARTITION_EOF:
                    state.on_error(err)
    finally:
        consumer.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Print a sample message and a summary of the first N messages; exit 1 when none were read."""
    parser = argparse.ArgumentParser(prog="python -m dashboard.peek", description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=50, help="messages to read (default 50)")
    args = parser.parse_args(argv)
    setup_logging(logging.WARNING)
    settings = load_settings("peek", preflight)
    try:
        messages = read_from_start(settings, args.n)
    except KafkaException as exc:  # list_topics timed out: no broker
        print(f"peek: cannot read {settings.transactions_topic} at {settings.bootstrap_servers}: {exc}")
        return 1
    if not messages:
        print(f"peek: no messages in {settings.transactions_topic} at {settings.bootstrap_servers}")
        return 1
    summary = Summary()
    for i, (value, ts) in enumerate(messages):
        checked = check(value, ts, settings.time_skew_ms)
        if i == 0:
            print(describe(value, checked), end="\n\n")
        summary.add(checked)
    print(summary.render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
