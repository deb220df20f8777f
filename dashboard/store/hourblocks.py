"""Sums keyed by (time slot, dimension codes), kept in one immutable block per clock hour. Pure.

The storage under `dashboard.store.rollups`. A key packs a row's time slot (of
`step` minutes) and its dimension codes into one int64, in bit fields, slot
highest: so keys sort by slot, then by each dimension in order, and one
`np.unique` groups rows. A block holds the rows of one clock hour, one per
key, sorted, with the columns unpacked (ready to concatenate into a
snapshot) and read-only: a merge replaces the block, so a snapshot holding
the old one never sees a change. The sums are the rollups' three measures:
count, amount and commission.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HOUR_MINUTES = 60


@dataclass(frozen=True)
class Block:
    """One hour of a table, one row per key, sorted by key.

    `columns`: minute (int32 epoch minutes, the slot's first), the codes of
    each dimension, count (int32), amount and commission (float64); read-only.
    """

    columns: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.columns[0])

    def nbytes(self) -> int:
        """Bytes of the columns."""
        return sum(c.nbytes for c in self.columns)


def group(
    keys: np.ndarray, count: np.ndarray | None, amount: np.ndarray, commission: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sum rows with equal keys (`count` None: one per row); return sorted unique keys and the three sums."""
    unique, inverse = np.unique(keys, return_inverse=True)
    k = len(unique)
    counts = np.bincount(inverse, minlength=k) if count is None else np.bincount(inverse, count, minlength=k)
    return (
        unique,
        counts.astype(np.int32),
        np.bincount(inverse, amount, minlength=k),
        np.bincount(inverse, commission, minlength=k),
    )


class HourBlocks:
    """Sums by (time slot of `step` minutes, dimension codes), in one block per hour.

    A key packs the slot and the codes in bit fields, slot highest:
    (slot << sum(widths)) | code_1 << ... | code_n, so keys sort by slot, then
    by each dimension in order. Blocks keep the columns unpacked (ready to
    concatenate into a snapshot); a merge packs them again.
    """

    def __init__(self, widths: tuple[int, ...], step: int) -> None:
        """`widths`: bits of each dimension's codes; `step`: minutes per time slot (dividing an hour)."""
        self.widths = widths
        self.bits = sum(widths)
        self.step = step
        self.blocks: dict[int, Block] = {}

    def keys(self, minute: np.ndarray, dims: Sequence[np.ndarray]) -> np.ndarray:
        """Packed keys of rows (minute: any minute of the slot)."""
        code = np.zeros(len(minute), dtype=np.int64)
        for width, values in zip(self.widths, dims, strict=True):
            code = (code << width) | values.astype(np.int64)
        return ((minute.astype(np.int64) // self.step) << self.bits) | code

    def _block(self, keys: np.ndarray, count: np.ndarray, amount: np.ndarray, commission: np.ndarray) -> Block:
        minute = ((keys >> self.bits) * self.step).astype(np.int32)
        dims = []
        shift = self.bits
        for width in self.widths:
            shift -= width
            dims.append(((keys >> shift) & ((1 << width) - 1)).astype(np.int8 if width <= 7 else np.int32))
        columns = (minute, *dims, count, amount, commission)
        for values in columns:
            values.flags.writeable = False
        return Block(columns)

    def add(self, minute: np.ndarray, dims: Sequence[np.ndarray], amount: np.ndarray, commission: np.ndarray) -> None:
        """Add rows (one transaction each) into their hour blocks."""
        self._merge(*group(self.keys(minute, dims), None, amount, commission))

    def _merge(self, keys: np.ndarray, count: np.ndarray, amount: np.ndarray, commission: np.ndarray) -> None:
        """Add grouped rows (sorted unique keys) into their hour blocks."""
        hours = (keys >> self.bits) * self.step // HOUR_MINUTES
        cuts = [0, *(np.flatnonzero(np.diff(hours)) + 1).tolist(), len(hours)]
        for lo, hi in itertools.pairwise(cuts):
            part = (keys[lo:hi], count[lo:hi], amount[lo:hi], commission[lo:hi])
            hour = int(hours[lo])
            old = self.blocks.get(hour)
            if old is not None:
                minute, *dims, c, a, m = old.columns
                both = [np.concatenate(pair) for pair in zip((self.keys(minute, dims), c, a, m), part, strict=True)]
                part = group(*both)
            self.blocks[hour] = self._block(*part)

    def replace(
        self,
        hour: int,
        minute: np.ndarray,
        dims: Sequence[np.ndarray],
        count: np.ndarray,
        amount: np.ndarray,
        commission: np.ndarray,
    ) -> None:
        """Set the block of `hour` to the sums of these rows (`count` per row); no rows: drop the block."""
        if len(minute) == 0:
            self.blocks.pop(hour, None)
            return
        self.blocks[hour] = self._block(*group(self.keys(minute, dims), count, amount, commission))

    def remap(self, dim: int, table: np.ndarray) -> None:
        """Replace the codes of dimension `dim` by `table[code]` in every block (order-preserving or not)."""
        for hour, block in list(self.blocks.items()):
            minute, *dims, c, a, m = block.columns
            dims[dim] = table[dims[dim]]
            self.blocks[hour] = self._block(*group(self.keys(minute, dims), c, a, m))

    def evict(self, first_hour: int) -> bool:
        """Drop blocks of hours before `first_hour`; True when any was dropped."""
        old = [h for h in self.blocks if h < first_hour]
        for h in old:
            del self.blocks[h]
        return bool(old)

    def columns(self) -> list[tuple[np.ndarray, ...]]:
        """Each block's columns, in hour order."""
        return [block.columns for _, block in sorted(self.blocks.items())]

    def rows(self) -> int:
        """Rows of all blocks."""
        return sum(len(b) for b in self.blocks.values())

    def nbytes(self) -> int:
        """Bytes of all blocks."""
        return sum(b.nbytes() for b in self.blocks.values())
