"""Page runs go first: the feed's writer thread steps aside while a page is being rendered. Pure, thread-safe.

Python runs one thread at a time (the GIL). A feed catching up a backlog
decodes messages in Python without pause, and a page run in the same process
then gets the interpreter only every few milliseconds: renders took several
times longer during catch-up than at rest. So page runs announce themselves
(`ReaderPriority.reading`), and the feed, between slices of a few hundred
messages, waits while any page run is under way (`wait_for_readers`), for at
most a bound per slice so that a constant stream of renders cannot stall the
feed: it still gets one slice per `max_wait` seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReaderPriority:
    """Counts readers (page runs) under way; a writer waits, bounded, until there are none."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._idle = threading.Event()
        self._idle.set()

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Mark a reader under way for the duration of the `with` block."""
        with self._lock:
            self._active += 1
            self._idle.clear()
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1
                if self._active == 0:
                    self._idle.set()

    @property
    def active(self) -> int:
        """Readers under way now."""
        return self._active

    def wait_for_readers(self, max_wait: float) -> bool:
        """Block while a reader is under way, for at most `max_wait` s; True when none is (any more)."""
        return self._idle.wait(max_wait)


#: The process's page runs (ui.shell.run_live marks them; the feed yields to them).
page_runs = ReaderPriority()
