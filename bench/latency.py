"""End-to-end latency: produce -> visible on the Live feed page, and produce -> error record in the log.

    python bench/latency.py [--events 80] [--interval 0.5] [--write]

Against the real local broker, with the real parts: a fresh set of topics, the
ingest worker (`python -m dashboard.ingest --processes 1`), the dashboard
(`python -m dashboard.ui`, default REFRESH_SECONDS 2) and Debian's headless
Chromium (Playwright) on the Live feed page. A background Pulse stream (the
live mode's default rate) runs throughout, so the page and the worker are not
idle. Every --interval seconds (with jitter, so the events fall anywhere in
the refresh cycle) this script produces one stamped event: a Pulse event with
transaction_id `lat-<n>-<run>` and the current time, every other one made
invalid (its total off by one: ERR_AMOUNT). The produce time is taken just
before `produce()` (linger 0, flushed at once).

- Visible: a MutationObserver in the page notes the browser's Date.now() when
  a stamped id first appears as text in the table's accessibility grid (the
  DOM cells beside the canvas, `[role="gridcell"]`); latency = that - produce
  time (one machine, one clock). The stamped events share a merchant of their
  own and the page is filtered to it (`?merchant=`, as a user would): the
  table shows about 11 rows, and at peak hours (PEAK_FACTOR) more rows than
  that can arrive between two refreshes; a row never on screen is never in
  the DOM.
- Error record: a read_committed consumer on the error topic notes when the
  record of each invalid stamped event arrives; latency = that - produce time.

Prints p50 / p95 / max of each and, with --write, replaces the latency section
of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import load_average  # noqa: E402
from bench.report import output_topics, pipeline_env, write_section  # noqa: E402
from dashboard.core.settings import Settings  # noqa: E402
from dashboard.kafka.admin import delete_topics, ensure_topics  # noqa: E402
from dashboard.pulse.events import Streams, history, make_factory  # noqa: E402
from dashboard.pulse.model import Population  # noqa: E402
from dashboard.pulse.profile import Profile  # noqa: E402
from dashboard.ui import serve  # noqa: E402

VISIBLE_TARGET_S = 3.0
ERROR_TARGET_S = 1.0
PREFIX = "lat-"

# Notes when each stamped id first shows in a grid cell (the canvas grid's accessibility table).
OBSERVER = """
prefix => {
  window.__seen = {};
  const scan = () => {
    const now = Date.now();
    for (const cell of document.querySelectorAll('[role="gridcell"]')) {
      const text = cell.textContent || '';
      if (text.startsWith(prefix) && !(text in window.__seen)) window.__seen[text] = now;
    }
  };
  new MutationObserver(scan).observe(document.body, {subtree: true, childList: true, characterData: true});
  scan();
}
"""
CHROMIUM = "/usr/bin/chromium"  # Debian's, as tests/e2e uses (with the same flags)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic"]


@contextlib.contextmanager
def streamlit_server(
    env: dict[str, str], log: Path, timeout: float = 90.0, plain: bool = False
) -> Iterator[tuple[str, float]]:
    """Run the dashboard server on a free port; yield (url, start time.time()) once healthy; stop it after.

    The server is the product's command (`python -m dashboard.ui`), or with `plain` a bare
    `streamlit run app.py` (no warm-up; .streamlit/config.toml applies to both).
    (tests/e2e/harness.py has the pytest form of this; it is not imported here to keep pytest out of bench.)
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = ["--server.port", str(port)]
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", *options] if plain else serve.command(*options)
    url = f"http://localhost:{port}"
    started = time.time()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start; see {log}")
            time.sleep(0.05)
        yield url, started
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def templates(n: int) -> list[dict[str, Any]]:
    """`n` valid Pulse events (seed 7) as dicts, to be stamped."""
    settings = Settings.from_env({"SEED": "7", "INVALID_RATE": "0", "FRAUD_RATE": "0"})
    streams = Streams.from_seed(7)
    population = Population.build(settings.merchant_count, settings.customer_count, streams.population)
    factory = make_factory(settings, population, streams.history)
    now = time.time()
    out = [orjson.loads(m.value) for batch in history(factory, Profile(100, 2.5), n, now - 3600, now) for m in batch]
    return out


def iso_now(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ErrorWatch(threading.Thread):
    """Reads the error topic (read_committed) and notes when each stamped transaction's record arrives."""

    def __init__(self, settings: Settings, topic: str) -> None:
        super().__init__(daemon=True)
        self.settings, self.topic = settings, topic
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        consumer = Consumer(
            self.settings.kafka_config(
                group_id=f"bench-latency-{uuid.uuid4().hex}", isolation_level="read_committed", enable_auto_commit=False
            )
        )
        parts = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        consumer.assign([TopicPartition(self.topic, p, 0) for p in parts])
        self.ready.set()
        try:
            while not self.stop.is_set():
                for msg in consumer.consume(100, 0.05):
                    now = time.time()
                    if msg.error() is None:
                        tid = orjson.loads(msg.value() or b"{}").get("transaction_id")
                        if isinstance(tid, str) and tid.startswith(PREFIX) and tid not in self.seen:
                            self.seen[tid] = now
        finally:
            consumer.close()


def quantiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max of `values` (seconds)."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return statistics.median(ordered), p95, ordered[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=80, help="stamped events (half of them invalid)")
    parser.add_argument("--interval", type=float, default=0.5, help="mean seconds between stamped events")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds to wait for the last ones")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    base = Settings.from_env()
    run = uuid.uuid4().hex[:8]
    topic = f"bench.latency.{run}"
    merchant = f"merch_latency_{run}"
    env = pipeline_env(base.bootstrap_servers, topic, f"latency-{run}", EVENT_INIT_MODE="skip", HISTORY_EVENTS="0")
    env.pop("REFRESH_SECONDS", None)  # the default refresh
    settings = Settings.from_env(env)
    ensure_topics(settings, [topic, settings.error_topic, settings.fraud_topic])
    load_start = load_average()
    logs = ROOT / "artifacts" / "bench-latency"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    watch = ErrorWatch(settings, settings.error_topic)
    try:
        for name, cmd in [
            ("worker", [sys.executable, "-m", "dashboard.ingest", "--processes", "1"]),
            ("pulse", [sys.executable, "-m", "dashboard.pulse"]),
        ]:
            with open(logs / f"{name}.log", "wb") as out:
                procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT))
        watch.start()
        watch.ready.wait(30)
        producer = Producer(settings.kafka_config(linger_ms=0, client_id="bench-latency"))
        stamped = templates(args.events)
        sent: dict[str, float] = {}
        invalid: set[str] = set()
        with streamlit_server(env, logs / "app.log") as (url, _), sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 3000, "height": 1200})  # every column on screen
            page.goto(f"{url}/live_feed?merchant={merchant}")
            # The filter matches nothing yet: wait for the page itself (its selection caption).
            caption = page.get_by_test_id("stCaptionContainer").filter(has_text="buffered transactions")
            caption.first.wait_for(timeout=60_000)
            page.evaluate(OBSERVER, PREFIX)
            rng = random.Random(1)
            for i, record in enumerate(stamped):
                record["merchant_id"] = merchant
                time.sleep(rng.uniform(0, 2 * args.interval))
                tid = f"{PREFIX}{i:04d}-{run}"
                now_ms = int(time.time() * 1000)
                record.update(transaction_id=tid, timestamp=iso_now(now_ms))
                if i % 2:
                    record["total_amount"] += 1  # ERR_AMOUNT
                    invalid.add(tid)
                sent[tid] = time.time()
                producer.produce(topic, orjson.dumps(record), record["customer_id"].encode(), timestamp=now_ms)
                producer.flush(10)
            deadline = time.monotonic() + args.settle
            while time.monotonic() < deadline:
                seen: dict[str, float] = page.evaluate("() => window.__seen")
                if len(seen) == len(sent) and invalid <= watch.seen.keys():
                    break
                time.sleep(0.2)
            seen = page.evaluate("() => window.__seen")
            browser.close()
    finally:
        watch.stop.set()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        delete_topics(base, [topic, *output_topics(env)])
    visible = [seen[t] / 1000 - s for t, s in sent.items() if t in seen]
    errors = [watch.seen[t] - sent[t] for t in invalid if t in watch.seen]
    lines = ["| path | events | seen | p50 s | p95 s | max s | goal (p95) |", "|---|---|---|---|---|---|---|"]
    targets = []
    for name, values, total, goal in [
        ("produce -> visible on the Live feed page (2 s refresh)", visible, len(sent), VISIBLE_TARGET_S),
        ("produce -> error record committed in the log", errors, len(invalid), ERROR_TARGET_S),
    ]:
        if values:
            p50, p95, top = quantiles(values)
            lines.append(f"| {name} | {total} | {len(values)} | {p50:.2f} | **{p95:.2f}** | {top:.2f} | ≤ {goal:g} |")
            ok = p95 <= goal and len(values) == total
            missing = "" if len(values) == total else f"; {total - len(values)} never seen"
            targets.append(f"- {name}: p95 ≤ {goal:g} s: {'met' if ok else 'NOT met'} ({p95:.2f} s{missing})")
        else:
            lines.append(f"| {name} | {total} | 0 | | | | ≤ {goal:g} |")
            targets.append(f"- {name}: NOT met (none seen)")
    command = f"python bench/latency.py --events {args.events} --interval {args.interval:g}"
    body = (
        "## End-to-end latency\n\n"
        f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M')}; load average {load_start} at the start,"
        f" {load_average()} at the end). Real broker, worker, Streamlit server and headless Chromium; method in"
        " the docstring of bench/latency.py.\n\n" + "\n".join(lines) + "\n\nTargets:\n\n" + "\n".join(targets) + "\n"
    )
    print(body)
    if args.write:
        write_section("latency", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
