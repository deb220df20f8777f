"""Page runs first: the writer waits while a reader is under way, bounded, and goes on once none is."""

from __future__ import annotations

import threading
import time

import pytest

from dashboard.store.priority import ReaderPriority


def test_no_reader_means_no_wait() -> None:
    p = ReaderPriority()
    started = time.monotonic()
    assert p.wait_for_readers(5.0)
    assert time.monotonic() - started < 1.0


def test_the_writer_waits_for_every_reader_to_finish() -> None:
    p = ReaderPriority()
    first, second = threading.Event(), threading.Event()
    inside = threading.Barrier(3)

    def reader(done: threading.Event) -> None:
        with p.reading():
            inside.wait(5)
            done.wait(5)

    threads = [threading.Thread(target=reader, args=(e,)) for e in (first, second)]
    for t in threads:
        t.start()
    inside.wait(5)
    assert p.active == 2
    assert not p.wait_for_readers(0.05)  # both under way: the bound is reached
    first.set()
    threads[0].join(5)
    assert not p.wait_for_readers(0.05)  # one is still under way
    second.set()
    threads[1].join(5)
    assert p.wait_for_readers(5.0)
    assert p.active == 0


def test_a_reader_that_raises_is_still_counted_out() -> None:
    p = ReaderPriority()
    with pytest.raises(ValueError), p.reading():
        raise ValueError("page failed")
    assert p.active == 0
    assert p.wait_for_readers(0.0)
