"""Masking cost for viewers: what a new buffer version costs before a viewer's pages can read it.

    python bench/privacy.py [--sizes 10000,200000] [--customers 1000,10000] [--runs 20]

A RingBuffer of each size is filled with synthetic transactions (tests/synthetic.py)
over `customers` distinct ids; `MaskedBuffer.snapshot()` is timed after every append
of 100 rows (a new buffer version, as under a live feed): the incremental pseudonyms,
rounded coordinates and the 300 kept raw messages masked again. One masked snapshot
serves every viewer session of the server. Also: the first masking of a buffer (every
pseudonym drawn) and `mask_payload` per message. Medians of `--runs`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from dashboard.store.buffer import RingBuffer  # noqa: E402
from dashboard.store.decode import RawMessage, to_batch  # noqa: E402
from dashboard.views import privacy  # noqa: E402
from tests import synthetic as syn  # noqa: E402

KEY = b"bench-key".ljust(32, b"-")


def messages(n: int, customers: int, seed: int) -> list[RawMessage]:
    """`n` valid synthetic messages whose customer ids spread over `customers` distinct ids."""
    out = []
    for i, e in enumerate(syn.events(n, seed=seed, invalid_share=0.0, xss=False)):
        record = {**(e.record or {}), "customer_id": f"cust_{(i * 7919) % customers}"}
        out.append(RawMessage(orjson.dumps(record), e.message.kafka_ts_ms, 0, i))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,200000")
    parser.add_argument("--customers", default="1000,10000")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    for size in map(int, args.sizes.split(",")):
        for customers in map(int, args.customers.split(",")):
            msgs = messages(size + 100 * args.runs, customers, seed=1)
            buffer = RingBuffer(size)
            buffer.append(to_batch(msgs[:size]))
            masked = privacy.MaskedBuffer(buffer, KEY)
            start = time.perf_counter()
            masked.snapshot()
            first = time.perf_counter() - start
            times = []
            for r in range(args.runs):
                buffer.append(to_batch(msgs[size + 100 * r : size + 100 * (r + 1)]))
                buffer.snapshot()  # the buffer's own copy, which every session pays anyway
                start = time.perf_counter()
                masked.snapshot()
                times.append(time.perf_counter() - start)
            print(
                f"buffer {size:>7,} rows, {customers:>6,} customers: first masking {first * 1000:6.1f} ms, "
                f"per new version {statistics.median(times) * 1000:5.2f} ms (median of {args.runs})"
            )
    values = [e.message.value for e in syn.events(2000, seed=3)]
    start = time.perf_counter()
    for v in values:
        privacy.mask_payload(v, KEY)
    print(f"mask_payload: {(time.perf_counter() - start) / len(values) * 1e6:.1f} µs per message")


if __name__ == "__main__":
    main()
