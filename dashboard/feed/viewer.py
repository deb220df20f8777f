"""What the dashboard's background consumers share: a client config that disturbs nobody, and a daemon loop.

A viewer only reads: it `assign()`s partitions under a throwaway group id
(never joined, never committed), so no group, lag metric or rebalance of
anyone else's sees it. Never calls `st.*`.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from dashboard.core.settings import Settings

# librdkafka prefetches up to 64 MB per consumer by default (queued.max.messages.kbytes),
# which a dashboard reading a backlog fills: part of its memory budget, so bounded here
# (bench/soak.py, 2 M messages, the same split: +8.8 MB after the warm-up with 8 MB, +53 MB with 64 MB).
VIEWER_QUEUE_KB = 8192
# With the queue full librdkafka postpones the partition's next fetch by fetch.queue.backoff.ms,
# 1 s by default: with 8 MB that stalled the feed reading a backlog (200,000 rows in 7.5 s, not 2.5).
VIEWER_QUEUE_BACKOFF_MS = 10


def viewer_group(name: str) -> str:
    """Return a fresh throwaway group id for the viewer `name` (unique per client: never joined, never committed)."""
    return f"darooghe-dashboard-{name}-{uuid.uuid4().hex}"


def viewer_config(
    settings: Settings, name: str, error_cb: Callable[[KafkaError], None], group_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Return the librdkafka config of the dashboard consumer `name`; `extra`: more settings (underscores for dots).

    No commits; `read_committed` (the ingest workers write transactionally:
    aborted records never show); `earliest` when an offset is out of range
    (retention overtook us, or the topic was recreated: read what is there
    now); never creates a topic; prefetches at most VIEWER_QUEUE_KB. `group_id`
    defaults to a fresh `viewer_group`.
    """
    extra.setdefault("queued_max_messages_kbytes", VIEWER_QUEUE_KB)
    extra.setdefault("fetch_queue_backoff_ms", VIEWER_QUEUE_BACKOFF_MS)
    return settings.kafka_config(
        group_id=group_id or viewer_group(name),
        client_id=f"darooghe-dashboard-{name}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        allow_auto_create_topics=False,
        error_cb=error_cb,
        **extra,
    )


class DaemonLoop:
    """`_run` on one daemon thread named `thread_name`: `start()` once (a second call does nothing), `stop()` waits.

    `_run` returns when `_stop` is set and closes what it opened.
    """

    thread_name = "darooghe-loop"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def start(self) -> None:
        """Start the thread; a second call does nothing."""
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait up to `timeout` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        raise NotImplementedError
