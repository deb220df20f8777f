"""The --processes supervisor: child arguments, failure and signal handling, with real child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from dashboard.ingest import processes
from dashboard.ingest.processes import child_args, supervise

# A child that exits 0 on SIGTERM (as a worker does after committing) and otherwise runs for a minute.
SLEEPER = (
    "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda s, f: sys.exit(0))\ntime.sleep(60)\nsys.exit(3)\n"
)


def child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_child_args_derive_ids_from_the_base_and_pass_the_options() -> None:
    assert child_args(1, "w", 2.0, fraud=False) == [
        "--processes",
        "1",
        "--transactional-id",
        "w-1",
        "--until-idle",
        "2.0",
        "--no-fraud",
    ]
    assert child_args(0, None, None, fraud=True) == ["--processes", "1"]


def test_all_children_exiting_zero_is_success() -> None:
    children = [child("pass"), child("pass")]
    assert supervise(children, threading.Event()) == 0


def test_a_failing_child_stops_the_others_and_fails() -> None:
    sleeper = child(SLEEPER)
    time.sleep(0.5)  # let it install its handler (a SIGTERM before that would also end it, non-zero)
    started = time.monotonic()
    assert supervise([sleeper, child("import sys; sys.exit(2)")], threading.Event()) == 1
    assert time.monotonic() - started < 30
    assert sleeper.returncode is not None


def test_stop_forwards_sigterm_and_clean_exits_are_success() -> None:
    children = [child(SLEEPER), child(SLEEPER)]
    stop = threading.Event()
    threading.Timer(1.0, stop.set).start()
    started = time.monotonic()
    assert supervise(children, stop) == 0
    assert time.monotonic() - started < 30
    assert [p.returncode for p in children] == [0, 0]


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "STOP_SECONDS", 0.5)
    stubborn = child("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n")
    time.sleep(0.5)
    stop = threading.Event()
    stop.set()
    assert supervise([stubborn], stop) == 1
    assert stubborn.returncode == -9


def barrier_child(ready: int, go: int, delay: float) -> subprocess.Popen[bytes]:
    """A child process that says it is ready after `delay` s through the barrier, then prints when it was let go."""
    code = (
        "import os, sys, time; from dashboard.ingest.processes import wait_for_siblings;"
        f"time.sleep({delay}); wait_for_siblings(); print(time.time(), flush=True)"
    )
    env = {**os.environ, processes.START_ENV: f"{ready},{go}"}
    return subprocess.Popen([sys.executable, "-c", code], env=env, pass_fds=(ready, go), stdout=subprocess.PIPE)


def test_children_start_reading_together_once_all_are_ready() -> None:
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    children = [barrier_child(ready_w, go_r, delay) for delay in (0.0, 1.5)]
    os.close(ready_w)
    os.close(go_r)
    started = time.time()
    assert processes.release_when_ready(ready_r, go_w, 2, timeout=20) == 2
    released = [float(p.communicate(timeout=20)[0]) for p in children]
    # The quick child waited for the slow one: both went within moments of each other, after its delay.
    assert min(released) >= started + 1.0 and max(released) - min(released) < 0.5


def test_a_sibling_that_never_gets_ready_holds_the_others_only_until_the_timeout() -> None:
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    child = barrier_child(ready_w, go_r, 0.0)
    os.close(ready_w)
    os.close(go_r)
    started = time.monotonic()
    assert processes.release_when_ready(ready_r, go_w, 2, timeout=1.0) == 1  # the second child never came
    assert child.wait(timeout=20) == 0 and time.monotonic() - started < 10


def test_a_worker_started_on_its_own_does_not_wait() -> None:
    started = time.monotonic()
    processes.wait_for_siblings({}, timeout=30)
    assert time.monotonic() - started < 1
