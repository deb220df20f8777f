"""The columnar ring buffer: atomic snapshots under concurrency, eviction, encoding, memory."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pandas as pd
import pytest

from dashboard.core.schema import ERR_AMOUNT, ERR_DEVICE, ERR_SCHEMA, ERR_TIME, ERROR_CODES
from dashboard.store.buffer import (
    CATEGORICAL,
    COMPACT_SLACK,
    ERROR_BITS,
    ID_WIDTH,
    MAX_STRING_CHARS,
    NUMERIC,
    RAW_KEEP,
    RAW_KEEP_BYTES,
    Batch,
    Dictionary,
    RingBuffer,
    Snapshot,
    codes_of,
    mask_of,
    to_datetime,
)


# -- rows derived from one sequence number --------------------------------------
def batch_of(seqs: range | list[int]) -> Batch:
    """A batch whose every column is a function of the row's sequence number."""
    s = np.asarray(list(seqs), dtype=np.int64)
    numeric = {
        "ts_ms": s * 7,
        "kafka_ts_ms": s * 11,
        "amount": s.astype(np.float64) + 0.5,
        "commission_amount": s * 2.0,
        "vat_amount": s * 3.0,
        "total_amount": s * 5.0 + 0.5,
        "risk_level": (s % 5 + 1).astype(np.int8),
        "lat": (s % 1000).astype(np.float32),
        "lng": (s % 777).astype(np.float32),
        "error_mask": (s % 16).astype(np.uint8),
        "partition": (s % 3).astype(np.int16),
        "offset": s,
    }
    strings = {name: [_string(name, int(i)) for i in s] for name in CATEGORICAL}
    return Batch(numeric=numeric, strings=strings, ids=[f"id-{i}" for i in s], raw=[str(i).encode() for i in s])


def _string(name: str, seq: int) -> str | None:
    if name == "failure_reason" and seq % 4 == 0:
        return None  # exercises code 0
    return f"{name}-{seq % 37}"


def assert_consistent(snap: Snapshot) -> np.ndarray:
    """Assert every row of `snap` is one whole row of `batch_of`; return the sequence numbers."""
    seq = snap.numeric["offset"]
    expected = batch_of(seq.tolist()) if len(seq) else None
    for name in NUMERIC:
        assert snap.numeric[name].dtype == NUMERIC[name]
        if expected is not None:
            np.testing.assert_array_equal(snap.numeric[name], expected.numeric[name], err_msg=name)
    for name in CATEGORICAL:
        values = np.asarray(snap.dictionaries[name], dtype=object)[snap.codes[name]]
        if expected is not None:
            assert values.tolist() == [v or "" for v in expected.strings[name]], name
    assert snap.ids.tolist() == [f"id-{i}".encode() for i in seq.tolist()]
    return seq


# -- concurrency ------------------------------------------------------------------
def test_snapshots_under_a_concurrent_writer_are_never_torn() -> None:
    capacity, total = 5_000, 60_000
    buf = RingBuffer(capacity)
    done = threading.Event()
    failures: list[BaseException] = []
    seen_versions: list[int] = []

    def writer() -> None:
        rng = np.random.default_rng(1)
        seq = 0
        try:
            while seq < total:
                n = int(rng.integers(1, 700))
                buf.append(batch_of(range(seq, min(total, seq + n))))
                seq += n
        finally:
            done.set()

    def reader() -> None:
        try:
            last_version = -1
            while True:
                finished = done.is_set()
                snap = buf.snapshot()
                seq = assert_consistent(snap)
                assert len(snap) <= capacity
                assert snap.version >= last_version
                last_version = snap.version
                if len(seq):
                    # Contiguous, oldest first, and exactly the newest rows appended so far.
                    np.testing.assert_array_equal(seq, np.arange(seq[0], seq[0] + len(seq)))
                    assert seq[-1] == snap.total_appended - 1
                    assert len(snap) == min(capacity, snap.total_appended)
                for row, raw in snap.raw:
                    assert raw == str(row).encode()
                if snap.raw:
                    assert snap.raw[-1][0] == snap.total_appended - 1
                seen_versions.append(snap.version)
                if finished:
                    return
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert not failures, failures[0]
    assert len(set(seen_versions)) > 10, "readers never overlapped the writer"
    final = buf.snapshot()
    np.testing.assert_array_equal(assert_consistent(final), np.arange(total - capacity, total))


# -- capacity and eviction ----------------------------------------------------------
def test_oldest_rows_are_evicted_first_and_capacity_holds() -> None:
    buf = RingBuffer(4)
    buf.append(batch_of(range(3)))
    assert assert_consistent(buf.snapshot()).tolist() == [0, 1, 2]
    buf.append(batch_of(range(3, 5)))
    assert assert_consistent(buf.snapshot()).tolist() == [1, 2, 3, 4]
    buf.append(batch_of(range(5, 10)))
    snap = buf.snapshot()
    assert assert_consistent(snap).tolist() == [6, 7, 8, 9]
    assert len(buf) == 4 and snap.total_appended == buf.total_appended == 10


def test_a_batch_bigger_than_capacity_keeps_its_tail() -> None:
    buf = RingBuffer(5)
    buf.append(batch_of(range(2)))  # start the ring off zero
    buf.append(batch_of(range(2, 14)))
    snap = buf.snapshot()
    assert assert_consistent(snap).tolist() == [9, 10, 11, 12, 13]
    assert snap.total_appended == 14
    buf.append(batch_of(range(14, 16)))
    assert assert_consistent(buf.snapshot()).tolist() == [11, 12, 13, 14, 15]


def test_empty_batch_and_empty_buffer() -> None:
    buf = RingBuffer(3)
    buf.append(batch_of([]))
    snap = buf.snapshot()
    assert len(snap) == 0 and snap.total_appended == 0 and snap.raw == ()
    assert len(snap.frame()) == 0
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(0)


def test_long_ids_are_truncated_to_the_id_width() -> None:
    buf = RingBuffer(2)
    batch = batch_of([1])
    buf.append(Batch(batch.numeric, batch.strings, ["x" * (ID_WIDTH + 10)], batch.raw))
    assert buf.snapshot().ids.tolist() == [b"x" * ID_WIDTH]


# -- snapshot immutability -------------------------------------------------------------
def test_snapshot_arrays_are_read_only_and_unaffected_by_later_writes() -> None:
    buf = RingBuffer(4)
    buf.append(batch_of(range(4)))
    snap = buf.snapshot()
    before = {name: arr.copy() for name, arr in snap.numeric.items()}
    for arr in [*snap.numeric.values(), *snap.codes.values(), snap.ids]:
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = arr[1]
    assert buf.snapshot() is snap  # nothing appended: the same snapshot is reused
    buf.append(batch_of(range(4, 8)))  # overwrites every slot of the ring
    for name, arr in snap.numeric.items():
        np.testing.assert_array_equal(arr, before[name])
    assert assert_consistent(snap).tolist() == [0, 1, 2, 3]
    assert buf.snapshot() is not snap
    assert assert_consistent(buf.snapshot()).tolist() == [4, 5, 6, 7]


def test_wrapped_snapshot_is_a_copy_too() -> None:
    buf = RingBuffer(4)
    buf.append(batch_of(range(6)))  # wraps: start is in the middle
    snap = buf.snapshot()
    assert not snap.numeric["offset"].flags.writeable
    buf.append(batch_of(range(6, 10)))
    assert snap.numeric["offset"].tolist() == [2, 3, 4, 5]


# -- encoding -----------------------------------------------------------------------------
def test_dictionary_encoding_round_trips() -> None:
    d = Dictionary()
    values = ["pos", None, "nfc", "pos", "", "mobile", "nfc"]
    codes = d.encode(values)
    assert codes.dtype == np.int32
    assert codes.tolist() == [1, 0, 2, 1, 0, 3, 2]
    assert [d.values[c] for c in codes] == ["pos", "", "nfc", "pos", "", "mobile", "nfc"]
    assert d.encode(["mobile", "online"]).tolist() == [3, 4]  # codes are stable across calls


def test_error_mask_round_trips() -> None:
    assert {code: 1 << i for i, code in enumerate(ERROR_CODES)} == ERROR_BITS
    assert mask_of([]) == 0
    assert codes_of(mask_of([ERR_DEVICE, ERR_AMOUNT])) == [ERR_AMOUNT, ERR_DEVICE]
    assert codes_of(mask_of(ERROR_CODES)) == list(ERROR_CODES)
    assert codes_of(mask_of([ERR_SCHEMA, ERR_TIME, ERR_SCHEMA])) == [ERR_TIME, ERR_SCHEMA]


def test_frame_has_categoricals_times_validity_and_ids() -> None:
    buf = RingBuffer(10)
    batch = batch_of(range(3))
    numeric = dict(batch.numeric)
    numeric["ts_ms"] = np.array([-1, 1_745_669_950_304, 0], dtype=np.int64)
    numeric["error_mask"] = np.array([0, 1, 0], dtype=np.uint8)
    buf.append(Batch(numeric, batch.strings, ["a", None, "c"], batch.raw))
    snap = buf.snapshot()
    frame = snap.frame()
    assert list(frame.columns) == [*NUMERIC, *CATEGORICAL, "valid"]
    assert isinstance(frame["payment_method"].dtype, pd.CategoricalDtype)
    assert frame["payment_method"].astype(str).tolist() == [_string("payment_method", i) for i in range(3)]
    assert list(frame["payment_method"].cat.categories) == list(snap.dictionaries["payment_method"])
    assert frame["failure_reason"].astype(str).tolist()[0] == ""  # missing is code 0, ""
    assert frame["valid"].tolist() == [True, False, True]

    times = snap.frame(["ts", "kafka_ts", "transaction_id"], rows=slice(0, 2))
    assert len(times) == 2
    assert pd.isna(times["ts"].iloc[0])
    assert times["ts"].iloc[1] == pd.Timestamp("2025-04-26T12:19:10.304Z")
    assert str(times["ts"].dt.tz) == "UTC"
    assert times["kafka_ts"].iloc[1] == pd.Timestamp(11, unit="ms", tz="UTC")
    assert times["transaction_id"].tolist() == ["a", ""]

    picked = snap.frame(["offset", "status"], rows=np.array([2, 0]))
    assert picked["offset"].tolist() == [2, 0]
    with pytest.raises(KeyError):
        snap.frame(["no_such_column"])


def test_to_datetime_maps_negative_to_nat() -> None:
    out = to_datetime(np.array([-1, 0, 86_400_000], dtype=np.int64))
    assert pd.isna(out[0])
    assert out[1] == pd.Timestamp("1970-01-01", tz="UTC")
    assert out[2] == pd.Timestamp("1970-01-02", tz="UTC")


# -- raw sample ---------------------------------------------------------------------------
def test_raw_sample_keeps_the_latest_payloads() -> None:
    buf = RingBuffer(10)  # the raw sample is independent of the capacity
    buf.append(batch_of(range(RAW_KEEP - 20)))
    buf.append(batch_of(range(RAW_KEEP - 20, RAW_KEEP + 50)))
    raw = buf.snapshot().raw
    assert len(raw) == RAW_KEEP
    assert [row for row, _ in raw] == list(range(50, RAW_KEEP + 50))
    assert all(payload == str(row).encode() for row, payload in raw)
    buf.append(batch_of(range(RAW_KEEP + 50, 3 * RAW_KEEP)))  # one batch larger than RAW_KEEP
    raw = buf.snapshot().raw
    assert [row for row, _ in raw] == list(range(2 * RAW_KEEP, 3 * RAW_KEEP))


def test_raw_sample_is_capped_in_bytes() -> None:
    buf = RingBuffer(10)
    big = RAW_KEEP_BYTES // 4
    base = batch_of(range(6))
    raw = [b"a" * big, b"b" * big, b"c" * big, b"d" * big, b"e", b"f" * (RAW_KEEP_BYTES + 1)]
    buf.append(Batch(base.numeric, base.strings, base.ids, raw))
    kept = buf.snapshot().raw
    # a, b, c and d fill the cap exactly; e pushes a out; f (over the cap alone) is never kept.
    assert [row for row, _ in kept] == [1, 2, 3, 4]
    assert buf.raw_bytes() == 3 * big + 1 <= RAW_KEEP_BYTES
    assert [p[:1] for _, p in kept] == [b"b", b"c", b"d", b"e"]


def distinct_batch(seqs: range) -> Batch:
    """Rows whose every string is distinct (customer, merchant, device, failure reason...)."""
    base = batch_of(seqs)
    strings = {name: [f"{name}-{i}" for i in seqs] for name in CATEGORICAL}
    return Batch(base.numeric, strings, base.ids, base.raw)


def test_dictionaries_drop_strings_no_buffered_row_uses() -> None:
    capacity = 100
    limit = 2 * capacity + COMPACT_SLACK
    buf = RingBuffer(capacity)
    buf.append(distinct_batch(range(limit - 1)))  # with "", exactly at the limit: no compaction yet
    assert buf.compactions == 0 and buf.dictionary_sizes()["customer_id"] == limit
    before = buf.snapshot()
    buf.append(distinct_batch(range(limit - 1, limit)))  # one past: every column compacts
    assert buf.compactions == len(CATEGORICAL)
    assert set(buf.dictionary_sizes().values()) == {capacity + 1}  # the live rows' strings and ""
    after = buf.snapshot()
    assert_consistent_distinct(after, range(limit - capacity, limit))
    # The snapshot taken before is untouched (its own codes and dictionary).
    assert_consistent_distinct(before, range(limit - 1 - capacity, limit - 1))
    # Amortised: the next compaction is capacity + COMPACT_SLACK distinct appends away.
    end = limit + capacity + COMPACT_SLACK - 1
    buf.append(distinct_batch(range(limit, end)))
    assert buf.compactions == len(CATEGORICAL) and buf.dictionary_sizes()["customer_id"] == limit
    buf.append(distinct_batch(range(end, end + 1)))
    assert buf.compactions == 2 * len(CATEGORICAL)
    assert_consistent_distinct(buf.snapshot(), range(end + 1 - capacity, end + 1))


def assert_consistent_distinct(snap: Snapshot, seqs: range) -> None:
    assert snap.numeric["offset"].tolist() == list(seqs)
    for name in CATEGORICAL:
        values = np.asarray(snap.dictionaries[name], dtype=object)[snap.codes[name]].tolist()
        assert values == [f"{name}-{i}" for i in seqs], name


def test_long_strings_are_cut() -> None:
    d = Dictionary(max_chars=5)
    codes = d.encode(["abcdefgh", "abcde", "abcdefxyz", "ab"])
    assert codes.tolist() == [1, 1, 1, 2]  # all three cut to "abcde"
    assert d.values == ["", "abcde", "ab"]
    buf = RingBuffer(10)
    base = batch_of(range(1))
    strings = dict(base.strings) | {"merchant_id": ["m" * 10_000]}
    buf.append(Batch(base.numeric, strings, base.ids, base.raw))
    assert buf.snapshot().dictionaries["merchant_id"][1] == "m" * MAX_STRING_CHARS


# -- memory --------------------------------------------------------------------------------
def test_bytes_per_row_at_full_capacity() -> None:
    capacity = 200_000  # the default BUFFER_CAPACITY
    buf = RingBuffer(capacity)
    rng = np.random.default_rng(7)
    step = 20_000
    for start in range(0, capacity + step, step):  # a little past full
        s = np.arange(start, start + step)
        batch = batch_of(s.tolist())
        strings = dict(batch.strings)
        strings["customer_id"] = [f"cust_{i}" for i in rng.integers(0, 10_000, step)]
        strings["merchant_id"] = [f"merch_{i}" for i in rng.integers(0, 500, step)]
        ids = [str(uuid.UUID(int=int(i))) for i in s]
        buf.append(Batch(batch.numeric, strings, ids, batch.raw))
    assert len(buf) == capacity
    per_row = buf.nbytes() / capacity
    assert per_row <= 300, per_row
    started = time.perf_counter()
    snap = buf.snapshot()
    assert len(snap) == capacity
    assert time.perf_counter() - started < 2.0  # a snapshot is a handful of array copies


def test_snapshots_share_categories_until_a_dictionary_changes() -> None:
    capacity = 100
    buf = RingBuffer(capacity)
    buf.append(distinct_batch(range(10)))
    first = buf.snapshot()
    buf.append(_known_strings(first, 10))  # a new row, but nothing new to encode
    second = buf.snapshot()
    assert second.version != first.version
    assert all(second.categories[name] is first.categories[name] for name in CATEGORICAL)
    dtype = second.categories["customer_id"].dtype()
    assert isinstance(dtype, pd.CategoricalDtype) and second.categories["customer_id"].dtype() is dtype
    assert list(dtype.categories) == list(second.dictionaries["customer_id"])
    buf.append(distinct_batch(range(11, 12)))  # new strings in every column
    third = buf.snapshot()
    assert all(third.categories[name] is not second.categories[name] for name in CATEGORICAL)
    # Compaction renumbers: the categories are new and frames still name each row's own strings.
    buf.append(distinct_batch(range(100, 100 + 2 * capacity + COMPACT_SLACK)))
    assert buf.compactions > 0
    compacted = buf.snapshot()
    assert compacted.categories["customer_id"] is not third.categories["customer_id"]
    frame = compacted.frame(["customer_id", "offset"])
    assert frame["customer_id"].tolist() == [f"customer_id-{i}" for i in frame["offset"]]


def _known_strings(snap: Snapshot, offset: int) -> Batch:
    """A one-row batch at `offset` whose strings are the last row's of `snap` (nothing new to encode)."""
    base = batch_of([offset])
    strings: dict[str, list[str | None]] = {
        name: [snap.dictionaries[name][int(snap.codes[name][-1])]] for name in CATEGORICAL
    }
    return Batch(base.numeric, strings, base.ids, base.raw)
