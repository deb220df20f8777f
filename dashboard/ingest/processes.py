"""Run several ingest worker processes from one command and supervise them.

One Python process uses one core for the GIL-bound per-message work, so
`python -m dashboard.ingest --processes N` starts N children, each a plain
single-process worker (`--processes 1`): its own consumer-group member and its
own transactional id, exactly as N workers on N machines would be. With a
stable --transactional-id ID, child i gets `ID-i` (and static membership), so
each restarted child fences its own predecessor; without one, each child's id
is unique per process.

The children start reading together: each says it is ready (clients
created, transactions initialised) over a pipe and waits until all are
(`wait_for_siblings`, at most START_WAIT_SECONDS), so they join the group in
one rebalance. A child that started reading alone would hand most of its
partitions over a moment later, and their new owners would rebuild the fraud
state from everything it had committed meanwhile.

The parent forwards SIGTERM and SIGINT to the children, and if one child
fails (exits non-zero) it stops the others and exits 1. A child whose parent
dies gets SIGTERM from the kernel (Linux), so no worker is left orphaned.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

PROCESS_INDEX_ENV = "DAROOGHE_INGEST_PROCESS"  # child i's index, in its environment (it serves METRICS_PORT + i)
START_ENV = "DAROOGHE_INGEST_START"  # "READY_FD,GO_FD": the start barrier's pipe ends, in a child's environment
START_WAIT_SECONDS = 30.0  # a child waits at most this long for its siblings before it reads alone
POLL_SECONDS = 0.2  # how often the parent looks at its children
STOP_SECONDS = 60.0  # how long stopped children get to commit and exit before SIGKILL
_PR_SET_PDEATHSIG = 1


def child_args(index: int, base_id: str | None, until_idle: float | None, fraud: bool) -> list[str]:
    """Return the command-line arguments of child `index` (a single-process worker)."""
    args = ["--processes", "1"]
    if base_id is not None:
        args += ["--transactional-id", f"{base_id}-{index}"]
    if until_idle is not None:
        args += ["--until-idle", repr(until_idle)]
    if not fraud:
        args.append("--no-fraud")
    return args


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the parent's forwarding still applies
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: Sequence[str], index: int = 0, start: tuple[int, int] | None = None) -> subprocess.Popen[bytes]:
    """Start `python -m dashboard.ingest args` as child `index`, sharing our stdout and stderr.

    `start`: the (ready, go) pipe ends of the start barrier, passed to the child.
    """
    env = {**os.environ, PROCESS_INDEX_ENV: str(index)}
    if start is not None:
        env[START_ENV] = f"{start[0]},{start[1]}"
    return subprocess.Popen(
        [sys.executable, "-m", "dashboard.ingest", *args],
        env=env,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - the parent has no other threads when it spawns
        close_fds=True,
        pass_fds=start or (),
    )


def wait_for_siblings(env: dict[str, str] | None = None, timeout: float = START_WAIT_SECONDS) -> None:
    """In a child of `run_processes`: say it is ready, then wait until every sibling is (at most `timeout` s).

    Does nothing in a worker started on its own. Never fails: the barrier only
    spares the group a rebalance, so any error just ends the wait.
    """
    fds = (os.environ if env is None else env).get(START_ENV)
    if not fds:
        return
    ready, go = (int(fd) for fd in fds.split(","))
    try:
        os.write(ready, b"r")
        select.select([go], [], [], timeout)  # readable at EOF: the parent closed its end, all are ready
    except (OSError, ValueError) as exc:
        logger.warning("start barrier: %s; reading without waiting for the other processes", exc)
    finally:
        for fd in (ready, go):
            with contextlib.suppress(OSError):
                os.close(fd)


def release_when_ready(ready: int, go: int, n: int, timeout: float = START_WAIT_SECONDS) -> int:
    """In the parent: wait until `n` children said they are ready (or all closed `ready`, or `timeout`), then
    close `go`, which lets every waiting child go; return how many were ready."""
    deadline = time.monotonic() + timeout
    seen = 0
    try:
        while seen < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([ready], [], [], left)[0]:
                break
            data = os.read(ready, n - seen)
            if not data:  # every child closed its end (exited) before all were ready
                break
            seen += len(data)
    finally:
        os.close(go)
        os.close(ready)
    return seen


def supervise(
    children: list[subprocess.Popen[bytes]], stop: threading.Event, clock: Callable[[], float] = time.monotonic
) -> int:
    """Wait for every child; return 0 when all exited 0, else 1.

    When `stop` is set (our SIGTERM/SIGINT) the children get SIGTERM and are
    waited for (each commits its open transaction and exits). When one child
    fails, the others are stopped the same way. A child still running
    STOP_SECONDS after being stopped is killed (the broker then aborts its
    open transaction).
    """
    failed: set[int] = set()
    stopping_since: float | None = None
    pause = threading.Event()  # never set: its wait() is the sleep once `stop` is set
    while True:
        for p in children:
            if p.returncode not in (None, 0) and p.pid not in failed:
                logger.error("worker process %d exited with code %d", p.pid, p.returncode)
                failed.add(p.pid)
        running = [p for p in children if p.poll() is None]
        if not running:
            return 1 if failed else 0
        if (stop.is_set() or failed) and stopping_since is None:
            stopping_since = clock()
            for p in running:
                p.send_signal(signal.SIGTERM)
        elif stopping_since is not None and clock() - stopping_since > STOP_SECONDS:
            for p in running:
                logger.error("worker process %d did not stop within %.0f s; killing it", p.pid, STOP_SECONDS)
                p.kill()
                failed.add(p.pid)
        (stop if stopping_since is None else pause).wait(POLL_SECONDS)


def run_processes(n: int, base_id: str | None, until_idle: float | None, fraud: bool, stop: threading.Event) -> int:
    """Start `n` single-process workers and supervise them; return the exit code (0 or 1)."""
    children = []
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    try:
        for i in range(n):
            children.append(spawn(child_args(i, base_id, until_idle, fraud), i, (ready_w, go_r)))
        os.close(ready_w)  # the children hold these ends now
        os.close(go_r)
        logger.info("started %d worker processes: %s", n, [p.pid for p in children])
        threading.Thread(target=release_when_ready, args=(ready_r, go_w, n), name="start-barrier", daemon=True).start()
        return supervise(children, stop)
    finally:
        for p in children:
            if p.poll() is None:
                p.kill()
                p.wait()
