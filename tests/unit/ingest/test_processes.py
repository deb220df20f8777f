"""The --processes supervisor: child arguments, failure and signal handling, with real child processes."""

from __future__ import annotations

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
