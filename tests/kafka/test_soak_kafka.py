"""Memory independent of cardinality, through the real broker: bench/soak.py at a small size.

Distinct customer, merchant, device and failure-reason strings on every
message, far beyond the buffer's capacity (2,000): the app's resident memory
(the dashboard's feeds, in the soak process) is the same, caught up and
quiet, after the warm-up's 100,000 and after all 200,000 messages, and its
bursts stay within a few tens of MB. With every customer in the fraud windows
at once (event time 0.1 ms a message), so is the ingest worker's: its windows,
averages and per-minute aggregates are bounded, not its event-time horizon.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.kafka


def soak(bootstrap: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run bench/soak.py on 200,000 messages with `args`; return its figures and samples."""
    out = tmp_path / "soak.json"
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PYTHONPATH=str(ROOT))
    command = [sys.executable, "bench/soak.py", "--messages", "200000", "--sample", "0.5", *args]
    result = subprocess.run(
        [*command, "--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def test_distinct_keys_far_beyond_the_buffer_keep_the_apps_memory_flat(bootstrap: str, tmp_path: Path) -> None:
    data = soak(bootstrap, tmp_path, "--capacity", "2000")
    figures, samples = data["figures"], data["samples"]
    assert samples[-1]["consumed"] >= 200_000 > 50 * 2000  # every message, far beyond the buffer
    # Caught up and quiet, after 100,000 more distinct keys than at the end of the warm-up: the same memory.
    assert figures["app_mb_end"] - figures["app_mb_after_warmup"] <= 15, figures
    # Bursts (librdkafka's fetch buffers, a snapshot being built) come and go within a bound.
    assert figures["app_mb_max"] - figures["app_mb_first"] <= 40, samples
    limit = 2 * 2000 + 1024  # buffer.COMPACT_SLACK: dictionaries compacted, never beyond
    assert all(size <= limit for size in figures["buffer_dictionaries"].values()), figures


def test_every_customer_in_the_fraud_windows_at_once_keeps_the_workers_memory_flat(
    bootstrap: str, tmp_path: Path
) -> None:
    # 200,000 distinct customers and merchants within 20 s of event time: without its bounds the worker would hold
    # them all (windows, averages, the minute's merchant sums); with FRAUD_MAX_CUSTOMERS 5,000 it holds the same after
    # the second 100,000 as after the first.
    figures = soak(bootstrap, tmp_path, "--step-ms", "0.1", "--max-customers", "5000")["figures"]
    assert figures["worker_mb_end"] - figures["worker_mb_after_warmup"] <= 15, figures
