"""The per-minute aggregate records of darooghe.rollups: their key, their value and how to read them. Pure.

The ingest workers aggregate the transactions of their own partitions per
minute of EVENT time (`dashboard.store.aggregate`) and write one record per
(minute, run) in the same Kafka transaction as their error records and
offsets. A run is one worker's uninterrupted stretch of a minute over the
partitions it owns: its record is CUMULATIVE (the latest value replaces the
earlier ones), so the topic is compacted (plus time retention), and each
run has a unique id, so runs never overwrite each other: after an abort,
a restart or a rebalance the owners start new runs and the dashboard adds
the runs of a minute up. The key also names the first partition the run
counted (informative only). The topic's storage is thus bounded by
minutes x workers x (1 + restarts and rebalances within a minute, and
minutes a worker comes back to after closing them), whatever the rate.

Value: msgpack (msgspec), an array of fields (`RollupRecord`), with the
numeric columns as little-endian packed bytes:
- the cube: one row per combination seen of merchant category, payment
  method, status, commission type and validity (`pack_cell`), with count,
  sum of amounts and sum of commissions;
- errors: transactions violating each rule of ERROR_CODES;
- merchants: per (merchant, category, commission type) the top merchants of
  the run by count and by amount, and per (category, commission type) one
  row with merchant "" for all the others, so totals stay exact.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec

from dashboard.core.schema import COMMISSION_TYPES, ERROR_CODES, MERCHANT_CATEGORIES, PAYMENT_METHODS, STATUSES

FORMAT: Final = 1
#: Enum dimensions: name -> values; code 0 is missing or unknown, code i + 1 is values[i].
ENUMS: Final[dict[str, tuple[str, ...]]] = {
    "merchant_category": MERCHANT_CATEGORIES,
    "payment_method": PAYMENT_METHODS,
    "status": STATUSES,
    "commission_type": COMMISSION_TYPES,
}
CUBE_DIMS: Final = ("merchant_category", "payment_method", "status", "commission_type", "valid")
#: Bits of each cube dimension in a packed cell code (uint16), first dimension highest.
CELL_BITS: Final = (3, 3, 2, 2, 1)
#: Bits of merchant category and commission type in a merchant row's packed code.
MERCHANT_CELL_BITS: Final = (3, 2)
ENUM_CODES: Final[dict[str, dict[str, int]]] = {
    name: {v: i + 1 for i, v in enumerate(values)} for name, values in ENUMS.items()
}
_LITTLE = sys.byteorder == "little"


def pack_cell(codes: tuple[int, ...], bits: tuple[int, ...] = CELL_BITS) -> int:
    """Pack dimension codes into one int, first highest (each code must fit its bits)."""
    cell = 0
    for code, width in zip(codes, bits, strict=True):
        cell = (cell << width) | code
    return cell


def unpack_cell(cell: int, bits: tuple[int, ...] = CELL_BITS) -> tuple[int, ...]:
    """The dimension codes of a packed cell (the inverse of `pack_cell`)."""
    out = []
    for width in reversed(bits):
        out.append(cell & ((1 << width) - 1))
        cell >>= width
    return tuple(reversed(out))


def packed(typecode: str, values: Sequence[int] | Sequence[float]) -> bytes:
    """Little-endian bytes of `values` as an array of `typecode` ("H": uint16, "I": uint32, "d": float64)."""
    arr = array(typecode, values)
    if not _LITTLE:
        arr.byteswap()
    return arr.tobytes()


class RollupRecord(msgspec.Struct, array_like=True, frozen=True):
    """One run's cumulative aggregate of a minute of its worker's partitions (see the module docstring).

    Column bytes: cells "<u2", counts "<u4", amounts and commissions "<f8";
    the merchant columns likewise, `merchants` naming each merchant row.
    """

    format: int
    minute: int  # epoch minute of event time
    partition: int  # the first partition the run counted (informative)
    run: str
    count: int  # transactions in the run (sum of the cube's counts)
    cells: bytes
    counts: bytes
    amounts: bytes
    commissions: bytes
    errors: list[int]  # per ERROR_CODES
    merchants: list[str]
    m_cells: bytes
    m_counts: bytes
    m_amounts: bytes
    m_commissions: bytes


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(RollupRecord)


def record_key(minute: int, partition: int, run: str) -> bytes:
    """The compaction key of a run's record: "minute/partition/run"."""
    return f"{minute}/{partition}/{run}".encode()


def encode(record: RollupRecord) -> bytes:
    """The record's value bytes."""
    return _encoder.encode(record)


@dataclass(frozen=True)
class Invalid:
    """A value that is not a rollup record of this format: why."""

    reason: str


def decode(value: bytes | None) -> RollupRecord | Invalid:
    """Decode a record value; any bytes give a record or an `Invalid` (never an exception).

    Checks what readers rely on: the format, column lengths that agree,
    errors per ERROR_CODES, a non-negative partition.
    """
    if not value:
        return Invalid("empty value")
    try:
        rec = _decoder.decode(value)
    except (msgspec.DecodeError, RecursionError) as exc:
        return Invalid(f"not a rollup record: {exc}")
    if rec.format != FORMAT:
        return Invalid(f"unknown format {rec.format}")
    n, m = len(rec.cells) // 2, len(rec.merchants)
    if (
        len(rec.cells) != 2 * n
        or (len(rec.counts), len(rec.amounts), len(rec.commissions)) != (4 * n, 8 * n, 8 * n)
        or (len(rec.m_cells), len(rec.m_counts), len(rec.m_amounts), len(rec.m_commissions))
        != (2 * m, 4 * m, 8 * m, 8 * m)
        or len(rec.errors) != len(ERROR_CODES)
        or rec.partition < 0
        or not -(2**40) < rec.minute < 2**40
    ):
        return Invalid("columns of unequal length or fields out of range")
    return rec
