"""Memory independent of cardinality, through the real broker: bench/soak.py at a small size.

Distinct customer, merchant, device and failure-reason strings on every
message, far beyond the buffer's capacity (2,000): the app's resident memory
(the dashboard's feeds, in the soak process) is the same, caught up and
quiet, after the warm-up's 100,000 and after all 200,000 messages, and its
bursts stay within a few tens of MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.kafka


def test_distinct_keys_far_beyond_the_buffer_keep_the_apps_memory_flat(bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, PYTHONPATH=str(ROOT))
    command = [sys.executable, "bench/soak.py", "--messages", "200000", "--capacity", "2000", "--sample", "0.5"]
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
    data = json.loads(out.read_text())
    figures, samples = data["figures"], data["samples"]
    assert samples[-1]["consumed"] >= 200_000 > 50 * 2000  # every message, far beyond the buffer
    # Caught up and quiet, after 100,000 more distinct keys than at the end of the warm-up: the same memory.
    assert figures["app_mb_end"] - figures["app_mb_after_warmup"] <= 15, figures
    # Bursts (librdkafka's fetch buffers, a snapshot being built) come and go within a bound.
    assert figures["app_mb_max"] - figures["app_mb_first"] <= 40, samples
    limit = 2 * 2000 + 1024  # buffer.COMPACT_SLACK: dictionaries compacted, never beyond
    assert all(size <= limit for size in figures["buffer_dictionaries"].values()), figures
