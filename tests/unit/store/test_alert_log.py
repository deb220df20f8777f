"""The dashboard's fraud-alert log: capped in rows and in bytes, hostile strings cut."""

from __future__ import annotations

import orjson

from dashboard.core.schema import FRAUD_RULES
from dashboard.store.alert_log import MAX_IDS, AlertLog, parse_alert, row_bytes
from dashboard.store.buffer import ID_WIDTH, MAX_STRING_CHARS

RULE = next(iter(FRAUD_RULES))


def alert(customer: str, ids: list[str] | None = None) -> dict[str, object]:
    record = {"rule": RULE, "customer_id": customer, "transaction_ids": ids or ["t1"], "event_time_ms": 1}
    row = parse_alert(orjson.dumps(record), 2)
    assert row is not None
    return row


def test_rows_beyond_the_row_cap_evict_the_oldest() -> None:
    log = AlertLog(capacity=3)
    log.extend(alert(f"c{i}") for i in range(5))
    assert log.snapshot()["customer_id"].tolist() == ["c2", "c3", "c4"]
    assert len(log) == 3


def test_bytes_beyond_the_byte_cap_evict_the_oldest_at_the_edge() -> None:
    rows = [alert(f"c{i}") for i in range(4)]
    size = row_bytes(rows[0])
    assert all(row_bytes(r) == size for r in rows)
    log = AlertLog(capacity=100, max_bytes=3 * size)
    log.extend(rows[:3])  # exactly at the cap: all kept
    assert len(log) == 3 and log.nbytes() == 3 * size
    log.extend(rows[3:])  # one byte-row over: the oldest goes
    assert log.snapshot()["customer_id"].tolist() == ["c1", "c2", "c3"]
    assert log.nbytes() == 3 * size


def test_hostile_strings_are_cut_so_a_row_stays_small() -> None:
    row = alert("x" * 1_000_000, ["y" * 10_000] * 1000)
    assert row["customer_id"] == "x" * MAX_STRING_CHARS
    assert len(row["transaction_ids"]) == MAX_IDS and all(len(i) == ID_WIDTH for i in row["transaction_ids"])
    assert row_bytes(row) < 5_000
