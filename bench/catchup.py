"""Render time while the feed catches up a backlog, and time to the first data on screen.

    python bench/catchup.py [--backlog 1000000] [--capacity 200000] [--repeats 3] [--period 0.5] [--write]
    python bench/catchup.py --only first-data [--backlog 200000] [--repeats 4] [--pair-plain]

Against the real local broker. Pulse writes --backlog events (history mode,
7 days, default FRAUD_RATE and INVALID_RATE, seed 42) to a fresh topic. Then:

1. Render time during catch-up, in this process as the server runs it: a
   fresh `Feed` with a buffer of --capacity rows (the default BUFFER_CAPACITY:
   the feed backfills the newest rows that fit) starts reading the backlog
   while the pages (overview, live_feed, validation, merchants, in turn) are
   rendered through AppTest every --period seconds, until the buffer holds
   what the backfill reads; then the same pages are rendered as often again at
   rest (feed caught up, buffer full). The figure is the server-side script
   run (bench/dashboard.py's ScriptTimer). Each round runs this twice, back to
   back: with the feed yielding to page runs (as shipped, `store.priority`)
   and with a feed that ignores them (a ReaderPriority no page marks), the
   behaviour before. p50 / p95 over all rounds, catch-up time, and the median
   of the per-round ratios p95(catch-up) / p95(at rest).
2. Time to first data: the dashboard server (`python -m dashboard.ui`, as
   scripts/stack and docker-compose.yml run it) on that topic (default
   settings), headless Chromium (launched before the server starts, as a
   user's browser is open) opens the Overview as soon as the server
   answers its health check, and the time from starting the server process
   to the selection caption ("... buffered transactions") is taken, --repeats
   times; median and max.

`--only first-data` measures part 2 alone (minutes less; a smaller --backlog
is enough for it). With `--pair-plain` each of its starts is paired, back to
back and in alternating order, with one of a bare `streamlit run app.py` (no
warm-up), and both medians are printed. With --write (full runs only),
replaces the catchup section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dashboard import ScriptTimer, app_test, quiet_streamlit, share_script_cache, timed_run  # noqa: E402
from bench.ingest import load_average, pre_produce  # noqa: E402
from bench.latency import CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402
from bench.report import write_section  # noqa: E402
from dashboard.core.settings import Settings  # noqa: E402
from dashboard.feed.transactions import Feed  # noqa: E402
from dashboard.kafka.admin import delete_topics, message_count  # noqa: E402
from dashboard.store.buffer import RingBuffer  # noqa: E402
from dashboard.store.priority import ReaderPriority, page_runs  # noqa: E402
from dashboard.ui import source as live  # noqa: E402

PAGES = ("overview", "live_feed", "validation", "merchants")
RENDER_TARGET_MS = 150.0
FIRST_DATA_TARGET_S = 5.0


def p95(values: list[float]) -> float:
    return float(np.quantile(np.asarray(values), 0.95))


def one_run(settings: Settings, expected: int, yielding: bool, period: float) -> tuple[list[float], list[float], float]:
    """(script seconds during catch-up, script seconds at rest, catch-up seconds) of one fresh feed."""
    buffer = RingBuffer(settings.buffer_capacity)
    feed = Feed(settings, buffer, priority=page_runs if yielding else ReaderPriority())
    live.install(feed)
    try:
        tests = {page: app_test(page, {}) for page in PAGES}  # warm, on an empty buffer
        during: list[float] = []
        rest: list[float] = []
        with ScriptTimer() as timer:
            start = time.perf_counter()
            feed.start()
            i = 0
            while buffer.total_appended < expected:
                page = PAGES[i % len(PAGES)]
                next_at = time.perf_counter() + period
                during.append(timed_run(tests[page], timer, page)[0])
                i += 1
                if time.perf_counter() - start > 600:
                    raise TimeoutError(f"feed read {buffer.total_appended} of {expected} in 600 s")
                time.sleep(max(0.0, next_at - time.perf_counter()))
            seconds = time.perf_counter() - start
            for j in range(max(len(during), 2 * len(PAGES))):
                page = PAGES[j % len(PAGES)]
                rest.append(timed_run(tests[page], timer, page)[0])
        return during, rest, seconds
    finally:
        feed.stop()
        live.install(None)


def first_data(env: dict[str, str], plain: bool = False) -> tuple[float, float]:
    """(seconds to the Overview's caption in Chromium, seconds to the server's health answer), both from starting the
    server (`plain`: bare `streamlit run app.py`).

    The browser is open before the server starts, as a wall screen's or a user's is: launching Chromium is not
    part of the server's start (starting Playwright and launching it took 0.9-1.3 s here, on the same 2 cores
    the server starts on).
    """
    logs = ROOT / "artifacts" / "bench-catchup"
    logs.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            with streamlit_server(env, logs / "app.log", plain=plain) as (url, started):
                healthy = time.time() - started
                page.goto(url)
                caption = page.get_by_test_id("stCaptionContainer").filter(has_text="buffered transactions")
                caption.first.wait_for(timeout=120_000)
                return time.time() - started, healthy
        finally:
            browser.close()


def first_data_only(env: dict[str, str], repeats: int, pair_plain: bool, load_start: str) -> int:
    """Measure and print the time to first data, `repeats` starts (each paired with a plain one: `pair_plain`)."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(repeats):
        for plain in ((False, True) if i % 2 == 0 else (True, False)) if pair_plain else (False,):
            seconds, healthy = first_data(env, plain)
            times[plain].append(seconds)
            name = "streamlit run app.py" if plain else "python -m dashboard.ui"
            print(
                f"  start {i + 1}, {name}: first data {seconds:.2f} s (healthy at {healthy:.2f} s; load"
                f" {load_average()})",
                flush=True,
            )
    print(f"\nload average {load_start} at the start, {load_average()} at the end")
    for plain, values in times.items():
        if values:
            name = "streamlit run app.py (plain)" if plain else "python -m dashboard.ui"
            print(
                f"{name}: first data median {statistics.median(values):.2f} s, max {max(values):.2f} s over"
                f" {len(values)} starts ({', '.join(f'{v:.2f}' for v in values)}); target {FIRST_DATA_TARGET_S:g} s"
            )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--capacity", type=int, default=None, help="buffer rows (default: BUFFER_CAPACITY's default)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--period", type=float, default=0.5, help="seconds between page renders during catch-up")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--only", choices=["first-data"], help="measure only the time to first data")
    parser.add_argument(
        "--pair-plain", action="store_true", help="with --only first-data: pair each start with a plain streamlit run"
    )
    args = parser.parse_args()
    if args.write and args.only:
        parser.error("--write needs the full run")
    quiet_streamlit()
    share_script_cache()
    base = Settings.from_env()
    topic = f"bench.catchup.{uuid.uuid4().hex[:8]}"
    load_start = load_average()
    started = time.monotonic()
    print(f"pre-producing {args.backlog:,} events to {topic} ...", flush=True)
    pre_produce(base, topic, args.backlog, base.invalid_rate, 3)
    backlog = message_count(base, topic)
    capacity = args.capacity or Settings.from_env({}).buffer_capacity
    settings = replace(
        base,
        transactions_topic=topic,
        error_topic=f"{topic}.errors",
        fraud_topic=f"{topic}.fraud",
        buffer_capacity=capacity,
    )
    expected = min(backlog, capacity)
    runs: dict[bool, list[tuple[list[float], list[float], float]]] = {True: [], False: []}
    firsts: list[float] = []
    env = dict(os.environ, TRANSACTIONS_TOPIC=topic, BUFFER_CAPACITY=str(capacity))
    env.update(ERROR_TOPIC=settings.error_topic, FRAUD_TOPIC=settings.fraud_topic)
    if args.only == "first-data":
        try:
            return first_data_only(env, args.repeats, args.pair_plain, load_start)
        finally:
            delete_topics(base, [topic])
    try:
        for i in range(args.repeats):
            for yielding in (True, False) if i % 2 == 0 else (False, True):
                runs[yielding].append(one_run(settings, expected, yielding, args.period))
                during, rest, seconds = runs[yielding][-1]
                print(
                    f"  round {i + 1}, feed {'yielding' if yielding else 'not yielding'}: caught up {expected:,} in"
                    f" {seconds:.1f} s; renders during p50 {1000 * statistics.median(during):.0f} / p95"
                    f" {1000 * p95(during):.0f} ms ({len(during)}), at rest p50 {1000 * statistics.median(rest):.0f} /"
                    f" p95 {1000 * p95(rest):.0f} ms (load {load_average()})",
                    flush=True,
                )
            seconds, healthy = first_data(env)
            firsts.append(seconds)
            print(
                f"  round {i + 1}: first data on screen {seconds:.1f} s after the server started (healthy at"
                f" {healthy:.1f} s)",
                flush=True,
            )
    finally:
        delete_topics(base, [topic])
    lines = [
        "| feed | catch-up s (median) | renders | during catch-up p50 / **p95** ms | at rest p50 / p95 ms"
        " | p95 during / at rest (median of rounds) |",
        "|---|---|---|---|---|---|",
    ]
    figures = {}
    for yielding in (True, False):
        during = [t for d, _, _ in runs[yielding] for t in d]
        rest = [t for _, r, _ in runs[yielding] for t in r]
        ratio = statistics.median(p95(d) / p95(r) for d, r, _ in runs[yielding])
        figures[yielding] = p95(during)
        lines.append(
            f"| {'yields to page runs (now)' if yielding else 'ignores page runs (before)'}"
            f" | {statistics.median(s for _, _, s in runs[yielding]):.1f} | {len(during)}"
            f" | {1000 * statistics.median(during):.0f} / **{1000 * p95(during):.0f}**"
            f" | {1000 * statistics.median(rest):.0f} / {1000 * p95(rest):.0f} | {ratio:.2f} |"
        )
    render_ok = 1000 * figures[True] <= RENDER_TARGET_MS
    first_ok = max(firsts) <= FIRST_DATA_TARGET_S
    command = (
        f"python bench/catchup.py --backlog {args.backlog} --capacity {capacity} --repeats {args.repeats}"
        f" --period {args.period:g}"
    )
    body = (
        "## Render time during catch-up\n\n"
        f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M')}; load average {load_start} at the start,"
        f" {load_average()} at the end; run took {time.monotonic() - started:.0f} s). A backlog of {backlog:,}"
        f" messages; the feed's buffer holds {capacity:,} (it backfills the newest {expected:,}). Server-side"
        f" script runs of {', '.join(PAGES)} in turn every {args.period:g} s; method in the docstring of"
        " bench/catchup.py.\n\n" + "\n".join(lines) + "\n\n"
        f"First data on screen (Overview caption in headless Chromium, open before the server starts) after starting"
        " the server: median"
        f" {statistics.median(firsts):.1f} s, max {max(firsts):.1f} s over {len(firsts)} starts.\n\n"
        "Targets:\n\n"
        f"- p95 render ≤ {RENDER_TARGET_MS:.0f} ms while the feed catches up: {'met' if render_ok else 'NOT met'}"
        f" ({1000 * figures[True]:.0f} ms; {1000 * figures[False]:.0f} ms with the feed ignoring page runs)\n"
        f"- first page shows data within {FIRST_DATA_TARGET_S:.0f} s of the server starting:"
        f" {'met' if first_ok else 'NOT met'} (max {max(firsts):.1f} s)\n"
    )
    print("\n" + body)
    if args.write:
        write_section("catchup", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
