"""Profile the ingest worker with py-spy on the default Pulse stream; print (and write) the top entries.

    python bench/worker_profile.py [--events 300000] [--invalid-rate 0.01] [--rate 250] [--top 15] [--write]

Against the real local broker. Pre-produces the events with Pulse (history
mode, default FRAUD_RATE, SEED 42, 6 partitions), then runs
`py-spy record --format raw` around `python -m dashboard.ingest --processes 1
--until-idle 1` (detectors on) and aggregates the samples of the worker's
threads while they run Python code (idle time, such as waiting inside
consume(), is not sampled): per function, the share of samples where it is on
top of the stack (self) and anywhere in it (total). With --write, replaces the
profile section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import load_average, pre_produce  # noqa: E402
from bench.report import output_topics, pipeline_env, write_section  # noqa: E402
from dashboard.core.settings import Settings  # noqa: E402
from dashboard.kafka.admin import delete_topics  # noqa: E402

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


def frame_name(frame: str) -> str:
    """'func (path/to/file.py:12)' -> 'func (file.py)': one entry per function, not per line."""
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    path = m.group("file")
    short = "/".join(Path(path).parts[-2:]) if path else "?"
    return f"{m.group('func')} ({short})"


def aggregate(raw: str) -> tuple[int, collections.Counter[str], collections.Counter[str]]:
    """Return (samples, self counts, total counts) per function from py-spy's raw (collapsed) output."""
    selfs: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [
            frame_name(f) for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        samples += n
        selfs[frames[-1]] += n
        for name in set(frames):
            totals[name] += n
    return samples, selfs, totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--invalid-rate", type=float, default=0.01)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    settings = Settings.from_env()
    topic = f"bench.profile.{uuid.uuid4().hex[:8]}"
    run_id = uuid.uuid4().hex[:8]
    pre_produce(settings, topic, args.events, args.invalid_rate, 6)
    env = pipeline_env(settings.bootstrap_servers, topic, f"profile-{run_id}")
    load_start = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        cmd = ["py-spy", "record", "--format", "raw", "--rate", str(args.rate), "--output", str(out), "--"]
        cmd += [sys.executable, "-m", "dashboard.ingest", "--processes", "1", "--until-idle", "1"]
        try:
            subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True)
        finally:
            delete_topics(settings, [topic, *output_topics(env)])
        samples, selfs, totals = aggregate(out.read_text())
    rows = [f"| {name} | {n / samples:.1%} | {totals[name] / samples:.1%} |" for name, n in selfs.most_common(args.top)]
    table = "| function (self time order) | self | total |\n|---|---|---|\n" + "\n".join(rows)
    cum = [f"| {name} | {n / samples:.1%} |" for name, n in totals.most_common(args.top + 10) if n < samples * 0.999][
        : args.top
    ]
    cum_table = "| function (total time order) | total |\n|---|---|\n" + "\n".join(cum)
    command = (
        f"python bench/worker_profile.py --events {args.events} --invalid-rate {args.invalid_rate} --rate {args.rate}"
        f" --top {args.top}"
    )
    body = (
        "## Worker profile\n\n"
        f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M')}; load average {load_start} at the start,"
        f" {load_average()} at the end). py-spy samples of the worker (one process, detectors on) while it runs"
        f" Python code, over the whole run including start-up: {samples:,} samples; share of them per function.\n\n"
        f"{table}\n\n{cum_table}\n"
    )
    print(body)
    if args.write:
        write_section("profile", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
