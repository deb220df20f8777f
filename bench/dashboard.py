"""Dashboard benchmark: page render time, feed throughput under refreshing pages, bytes per transaction.

    python bench/dashboard.py [--sizes 10000,100000,1000000] [--runs 30,30,20] [--feed-events 600000]
                              [--feed-repeats 3] [--quick] [--profile PAGE] [--write]

Render time. Pulse's pure event functions (dashboard.pulse.events, seed 42,
default FRAUD_RATE and INVALID_RATE, 100,000 customers, 500 merchants) draw
as many distinct, realistic messages as the largest size (1,000,000 by
default) over the 7 days ending at a fixed NOW; the feed's own `to_batch`
decodes them. Smaller sizes take evenly spaced rows of them, so every size
covers the same 7 days with distinct transactions. The rows go into a
full RingBuffer of exactly that capacity, installed with
`live.install(StaticSource(buffer, health))` (the health report of a
connected feed, from the real FeedStatus) and a clock fixed at NOW. Every page
app.py registers (read from its st.Page lines) runs through
`AppTest.from_file("app.py")`, with no filter and with a typical one (last
hour + two merchants). Before every timed run a few rows are appended, so
each run copies a fresh snapshot (as under a live feed); pages take turns so
a disturbance spreads over all of them. A page that raises is reported as
such and left out. Times per run:

  script: the server-side run itself, ScriptRunner._run_script in the script
          thread: `shell.draw()` (settings, snapshot, sidebar), the page body
          and the marshalling of every element (Arrow tables, Vega-Lite
          specs). This is the figure the targets apply to. Scripts are
          compiled once, as the server does (AppTest would recompile them
          on every run; see share_script_cache).
  CPU:    the script thread's CPU time in that run (less sensitive to other
          work on a shared machine than the wall time);
  at.run: the whole AppTest call (runner set-up, script thread, parsing the
          element tree); a trivial script gives AppTest's own floor.

A real browser session reruns only the page's live fragment every second,
without the sidebar; the full run measured here is an upper bound of that.
Full passes of Python's cyclic garbage collector (generation 2) pause
whichever run triggers them; each run's share of them is recorded, and the
targets' lines also give the worst p95 of the runs no such pass hit.

Feed rate. Pulse writes --feed-events messages to a fresh topic (history mode,
HISTORY_DAYS=1); then a `Feed` with a buffer of that capacity reads them from
the broker, timed from `Feed.start()` until `buffer.total_appended` reaches
the count: once alone, once while a refresher thread renders the Overview
through AppTest (default filters, the feed installed as the source, real
clock) once a second. A backlog read at full speed is the highest rate the
feed sustains. Runs alternate; medians and the median of paired ratios are
reported.

Bytes per transaction at the largest size: `buffer.nbytes() / capacity`
(columns + dictionaries), what tracemalloc sees allocated by creating and
filling the buffer, the RSS growth of doing so, and the size of one snapshot
(a reader's full copy; the buffer caches the latest).

Prints tables and, with --write, replaces the `dashboard` section of
BENCHMARKS.md with them and the exact command line. --profile PAGE prints
where the script run of PAGE spends its time at the largest size (cProfile
of the script thread) and skips everything else.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import itertools
import logging
import math
import os
import pstats
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit import logger as streamlit_logger  # noqa: E402
from streamlit.runtime.scriptrunner.script_cache import ScriptCache  # noqa: E402
from streamlit.runtime.scriptrunner.script_runner import ScriptRunner  # noqa: E402
from streamlit.testing.v1 import AppTest, local_script_runner  # noqa: E402
from streamlit.testing.v1 import app_test as app_test_module  # noqa: E402

from bench.report import output_topics, pipeline_env, write_section  # noqa: E402
from dashboard.core.settings import Settings  # noqa: E402
from dashboard.feed.status import FeedStatus, Health, Pipeline  # noqa: E402
from dashboard.feed.transactions import BATCH_SIZE, Feed  # noqa: E402
from dashboard.kafka.admin import delete_topics, message_count  # noqa: E402
from dashboard.pulse.events import Streams, history, make_factory  # noqa: E402
from dashboard.pulse.model import Population  # noqa: E402
from dashboard.pulse.profile import Profile  # noqa: E402
from dashboard.store.buffer import Batch, RingBuffer  # noqa: E402
from dashboard.store.decode import RawMessage, to_batch  # noqa: E402
from dashboard.ui import source as live  # noqa: E402

APP = ROOT / "app.py"


def app_pages() -> tuple[str, ...]:
    """Return the stems of the pages app.py registers (`st.Page("app_pages/NAME.py", ...)`), in menu order."""
    return tuple(re.findall(r'st\.Page\(\s*"app_pages/(\w+)\.py"', APP.read_text()))


PAGES = app_pages()
#: Filter name -> URL query.
FILTERS: dict[str, dict[str, Any]] = {
    "none": {},
    "1h + 2 merchants": {"window": "1h", "merchant": ["merch_7", "merch_12"]},
}
NOW_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the data's fixed "now"
DAY_S = 86_400.0
DAYS = 7.0  # the data's span
CUSTOMERS = 100_000
MERCHANTS = 500
FRESH_ROWS = 10  # appended before every timed run
SEED = 42
#: Targets of the issue.
P95_TARGET_MS = {100_000: 100.0, 1_000_000: 300.0}
FEED_TARGET = 20_000.0  # messages per second, while pages refresh
BYTES_TARGET = 300.0


# --- data ---------------------------------------------------------------------------------


def pulse_batch(n: int, start_s: float, end_s: float) -> Batch:
    """Return `n` Pulse events over [start_s, end_s) decoded by `to_batch`, as one batch in time order."""
    settings = replace(Settings.from_env({"SEED": str(SEED)}), customer_count=CUSTOMERS, merchant_count=MERCHANTS)
    streams = Streams.from_seed(SEED)
    population = Population.build(settings.merchant_count, settings.customer_count, streams.population)
    factory = make_factory(settings, population, streams.history)
    profile = Profile(settings.event_rate, settings.peak_factor)
    parts, i = [], 0
    for messages in history(factory, profile, n, start_s, end_s):
        for j in range(0, len(messages), BATCH_SIZE):
            chunk = messages[j : j + BATCH_SIZE]
            parts.append(to_batch([RawMessage(m.value, m.timestamp_ms, k % 3, k) for k, m in enumerate(chunk, i)]))
            i += len(chunk)
    return concat(parts)


def objects(values: Iterable[Any]) -> Sequence[Any]:
    """Return `values` as a 1-d numpy object array (typed as the Sequence that Batch takes).

    The benchmark keeps its own rows in these rather than in lists: numpy
    arrays are invisible to Python's cyclic garbage collector, so the
    harness does not lengthen the full GC passes that the runs measure.
    """
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return cast("Sequence[Any]", out)


def concat(batches: list[Batch]) -> Batch:
    """Return the rows of `batches` as one batch (string columns, ids and payloads as object arrays)."""
    chain = itertools.chain.from_iterable
    first = batches[0]
    return Batch(
        numeric={name: np.concatenate([b.numeric[name] for b in batches]) for name in first.numeric},
        strings={name: objects(chain(b.strings[name] for b in batches)) for name in first.strings},
        ids=objects(chain(b.ids for b in batches)),
        raw=objects(chain(b.raw for b in batches)),
    )


def take(batch: Batch, rows: np.ndarray) -> Batch:
    """Return the rows `rows` (integer positions) of a batch made by `concat`."""
    return Batch(
        numeric={name: arr[rows] for name, arr in batch.numeric.items()},
        strings={name: col[rows] for name, col in batch.strings.items()},  # type: ignore[call-overload]
        ids=batch.ids[rows],  # type: ignore[call-overload]
        raw=batch.raw[rows],  # type: ignore[call-overload]
    )


def sized(base: Batch, n: int) -> Batch:
    """Return `n` distinct rows spread evenly over the base's time span (n <= len(base))."""
    if n > len(base):
        raise ValueError(f"{n} rows asked of {len(base)} drawn")
    return take(base, np.round(np.linspace(0, len(base) - 1, n)).astype(np.int64))


def chunks(batch: Batch, size: int = BATCH_SIZE) -> Iterator[Batch]:
    """Yield consecutive slices of `batch` of `size` rows, as the feed appends them."""
    for a in range(0, len(batch), size):
        b = a + size
        yield Batch(
            numeric={name: arr[a:b] for name, arr in batch.numeric.items()},
            strings={name: col[a:b] for name, col in batch.strings.items()},
            ids=batch.ids[a:b],
            raw=batch.raw[a:b],
        )


def filled(batch: Batch) -> RingBuffer:
    """Return a full RingBuffer of exactly len(batch) rows holding `batch`."""
    buffer = RingBuffer(len(batch))
    for part in chunks(batch):
        buffer.append(part)
    return buffer


# --- render time ----------------------------------------------------------------------------


def share_script_cache() -> None:
    """Compile each script once per process, as Streamlit's server does (one ScriptCache per Runtime).

    AppTest gives every run a new ScriptCache, so each run would compile
    app.py and the page again (with the magic AST pass): ~10 ms that a
    served page never pays.
    """
    shared = ScriptCache()
    for module in (app_test_module, local_script_runner):  # the page manager's cache and the runner's
        module.ScriptCache = lambda: shared  # type: ignore[attr-defined]


def quiet_streamlit() -> None:
    """Silence AppTest's bare-mode chatter ("missing ScriptRunContext") and Streamlit's info logs."""
    streamlit_logger.set_log_level("error")
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage()
    )


class ScriptTimer:
    """Times every ScriptRunner._run_script (the script thread's whole run); optionally profiles it.

    Per run it records the wall time, the script thread's CPU time and the
    time that thread spent in full (generation 2) passes of Python's cyclic
    garbage collector, which land on whichever run happens to trigger them.
    """

    def __init__(self) -> None:
        self.times: list[tuple[float, float, float]] = []  # (wall, CPU, full GC) seconds per run
        self.profile: cProfile.Profile | None = None
        self._original: Callable[..., None] | None = None
        self._gc_started: dict[int, float] = {}  # thread id -> start of its running collection
        self._gc_spent: dict[int, float] = {}  # thread id -> seconds in full collections so far

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        ident = threading.get_ident()
        if phase == "start":
            self._gc_started[ident] = time.perf_counter()
        elif ident in self._gc_started:
            spent = time.perf_counter() - self._gc_started.pop(ident)
            self._gc_spent[ident] = self._gc_spent.get(ident, 0.0) + spent

    def __enter__(self) -> ScriptTimer:
        original = ScriptRunner._run_script
        self._original = original
        timer = self

        def timed(runner: ScriptRunner, rerun_data: Any) -> None:
            ident = threading.get_ident()
            start, cpu, in_gc = time.perf_counter(), time.thread_time(), timer._gc_spent.get(ident, 0.0)
            if timer.profile is not None:
                timer.profile.enable()
            try:
                original(runner, rerun_data)
            finally:
                if timer.profile is not None:
                    timer.profile.disable()
                wall, cpu = time.perf_counter() - start, time.thread_time() - cpu
                timer.times.append((wall, cpu, timer._gc_spent.get(ident, 0.0) - in_gc))

        ScriptRunner._run_script = timed  # type: ignore[method-assign,assignment]
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        ScriptRunner._run_script = self._original  # type: ignore[method-assign,assignment]
        gc.callbacks.remove(self._on_gc)


def quantile(values: list[float], q: float) -> float:
    """Return the q-quantile (linear interpolation) of `values`."""
    return float(np.quantile(np.asarray(values), q))


@dataclass
class Timing:
    """Durations in seconds of the timed runs of one page at one size and filter."""

    error: str | None = None  # what the page raised (then it is left out of later runs)
    script: list[float] = field(default_factory=list)  # wall time of the script run
    cpu: list[float] = field(default_factory=list)  # CPU time of the script thread in that run
    gc: list[float] = field(default_factory=list)  # time in full GC passes within that run
    total: list[float] = field(default_factory=list)  # wall time of at.run()

    def add(self, sample: tuple[float, float, float, float]) -> None:
        """Record one (script, cpu, gc, total) sample."""
        for values, value in zip((self.script, self.cpu, self.gc, self.total), sample, strict=True):
            values.append(value)

    def without_gc(self, q: float) -> float:
        """Return the q-quantile in ms of the script runs that no full GC pass hit."""
        clean = [s for s, g in zip(self.script, self.gc, strict=True) if g == 0]
        return 1000 * quantile(clean, q) if clean else math.nan

    def ms(self, which: str, q: float) -> float:
        """Return the q-quantile of `which` ("script", "cpu" or "total") in ms (NaN without runs)."""
        values = getattr(self, which)
        return 1000 * quantile(values, q) if values else math.nan

    def cell(self) -> str:
        """Return "p50 / **p95** · CPU p95" in ms, or the error."""
        if self.error is not None:
            return "raised (see below)"
        return f"{self.ms('script', 0.5):.0f} / **{self.ms('script', 0.95):.0f}** · {self.ms('cpu', 0.95):.0f}"


def app_test(page: str, query: dict[str, Any]) -> AppTest:
    """Return an AppTest of app.py switched to `page` with `query` in the URL, run twice (warm)."""
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.query_params.update(query)
    at.run()
    at.switch_page(f"app_pages/{page}.py").run()
    at.run()
    if at.exception:
        raise RuntimeError(f"{page} raised: {[e.value for e in at.exception]}")
    return at


def timed_run(at: AppTest, timer: ScriptTimer, what: str) -> tuple[float, float, float, float]:
    """Run `at` once; return seconds of (script wall, script thread CPU, full GC in it, at.run wall)."""
    before = len(timer.times)
    start = time.perf_counter()
    at.run()
    total = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"{what} raised: {[e.value for e in at.exception]}")
    if len(timer.times) != before + 1:
        raise RuntimeError(f"{what}: expected one script run, saw {len(timer.times) - before}")
    return (*timer.times[-1], total)


def connected_health(fresh: Batch) -> Health:
    """Return the health report of a connected feed that just appended `fresh` (real FeedStatus, no Kafka)."""
    status = FeedStatus("localhost:9092", "darooghe.transactions", stale_seconds=10)
    status.answered()
    status.assigned({0: 0, 1: 0, 2: 0}, {0: 1000, 1: 1000, 2: 1000})
    status.appended(fresh, {0: 990, 1: 995, 2: 1000}, NOW_S)
    status.pipeline(Pipeline(ingest_lag=40, error_records=1234))
    return status.health(NOW_S + 1, broker_down=False)


def install(buffer: RingBuffer, fresh: Batch) -> None:
    """Serve `buffer` to the pages with a connected feed's health report, at the data's fixed now."""
    live.install(live.StaticSource(buffer, connected_health(fresh)), clock=lambda: NOW_S + 1)


def render_times(buffer: RingBuffer, fresh: Batch, runs: int) -> dict[tuple[str, str], Timing]:
    """Time `runs` runs of every page under every filter, appending `fresh` before each run."""
    install(buffer, fresh)
    try:
        out = {(page, name): Timing() for name in FILTERS for page in PAGES}
        tests = {}
        for (page, name), timing in out.items():
            try:
                tests[(page, name)] = app_test(page, FILTERS[name])
            except Exception as exc:  # a page under construction: report it, time the others
                timing.error = f"{type(exc).__name__}: {exc}"
        for name, query in FILTERS.items():  # the filter reached the page
            if ("overview", name) in tests:
                caption = " ".join(c.value for c in tests[("overview", name)].caption)
                assert ("filtered" in caption) == bool(query.get("merchant")), caption
        with ScriptTimer() as timer:
            for _ in range(runs):
                for key, at in list(tests.items()):
                    buffer.append(fresh)
                    try:
                        out[key].add(timed_run(at, timer, f"{key}"))
                    except Exception as exc:
                        out[key].error = f"{type(exc).__name__}: {exc}"
                        del tests[key]
        return out
    finally:
        live.install(None)


def snapshot_ms(buffer: RingBuffer, fresh: Batch, runs: int = 5) -> float:
    """Return the median time in ms of taking a fresh snapshot (after an append)."""
    times = []
    for _ in range(runs):
        buffer.append(fresh)
        start = time.perf_counter()
        buffer.snapshot()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def apptest_floor(runs: int = 20) -> Timing:
    """Return the timings of a trivial one-element script under AppTest."""
    at = AppTest.from_string("import streamlit as st\nst.title('floor')")
    at.run()
    out = Timing()
    with ScriptTimer() as timer:
        for _ in range(runs):
            out.add(timed_run(at, timer, "floor"))
    return out


def profile_page(buffer: RingBuffer, fresh: Batch, page: str, query: dict[str, Any], runs: int) -> str:
    """Return cProfile's top functions (cumulative) of `runs` script runs of `page`."""
    install(buffer, fresh)
    try:
        at = app_test(page, query)
        with ScriptTimer() as timer:
            timer.profile = cProfile.Profile()
            for _ in range(runs):
                buffer.append(fresh)
                timed_run(at, timer, page)
        out = io.StringIO()
        stats = pstats.Stats(timer.profile, stream=out)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(25)
        median = 1000 * statistics.median(wall for wall, _, _ in timer.times)
        return f"median script run {median:.0f} ms (profiled, so slower)\n{out.getvalue()}"
    finally:
        live.install(None)


# --- bytes per transaction -----------------------------------------------------------------


def rss_bytes() -> int:
    """Return this process's resident set size in bytes (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Memory:
    """Bytes per buffered transaction, measured four ways."""

    rows: int
    nbytes: float  # buffer.nbytes() / capacity
    traced: float  # tracemalloc: allocated by creating and filling the buffer
    rss: float  # resident set growth of creating and filling the buffer
    snapshot: float  # one snapshot (a reader's copy)


def memory(batch: Batch) -> Memory:
    """Measure the bytes per transaction of a full buffer holding `batch`."""
    n = len(batch)
    parts = list(chunks(batch))
    gc.collect()
    before = rss_bytes()
    buffer = RingBuffer(n)
    for part in parts:
        buffer.append(part)
    gc.collect()
    rss = (rss_bytes() - before) / n
    nbytes = buffer.nbytes() / buffer.capacity
    del buffer
    gc.collect()
    tracemalloc.start()
    try:
        buffer = RingBuffer(n)
        for part in parts:
            buffer.append(part)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] / n
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        snap = buffer.snapshot()
        snapshot = (tracemalloc.get_traced_memory()[0] - base) / n
        del snap, buffer
    finally:
        tracemalloc.stop()
    return Memory(n, nbytes, traced, rss, snapshot)


# --- feed rate --------------------------------------------------------------------------------


def pre_produce(settings: Settings, topic: str, events: int) -> None:
    """Write `events` Pulse history events (one day, seed 42) to a fresh `topic`."""
    # Its own output topics: a flush also empties the outputs, and those of a stack on the same broker must stay.
    env = pipeline_env(
        settings.bootstrap_servers,
        topic,
        f"pulse-{uuid.uuid4().hex[:8]}",
        HISTORY_EVENTS=str(events),
        HISTORY_DAYS="1",
        SEED=str(SEED),
        EVENT_INIT_MODE="flush",
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dashboard.pulse", "--history-only"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        delete_topics(settings, output_topics(env))
    if done.returncode != 0:
        raise RuntimeError(f"pulse failed ({done.returncode}):\n{done.stderr[-3000:]}")


class Refresher(threading.Thread):
    """Renders a page through AppTest once a second (a page refreshing in a browser) until stopped."""

    def __init__(self, page: str) -> None:
        super().__init__(name="bench-refresher", daemon=True)
        self.page = page
        self.stop = threading.Event()
        self.times: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            at = AppTest.from_file(str(APP), default_timeout=300)
            at.run()
            at.switch_page(f"app_pages/{self.page}.py")
            next_at = time.monotonic()
            while not self.stop.is_set():
                start = time.perf_counter()
                at.run()
                self.times.append(time.perf_counter() - start)
                if at.exception:
                    raise RuntimeError([e.value for e in at.exception])
                next_at += 1.0
                self.stop.wait(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at, time.monotonic())  # a run longer than 1 s: the next starts at once
        except BaseException as exc:
            self.error = exc


@dataclass(frozen=True)
class FeedRun:
    """One timed read of the whole topic."""

    rate: float  # messages per second, Feed.start() to the last append
    seconds: float
    renders: tuple[float, ...] = ()  # seconds of each refresher run


def feed_rate(settings: Settings, total: int, refresh_page: str | None, deadline_s: float = 300.0) -> FeedRun:
    """Read `total` messages with a fresh Feed, a page refreshing once a second if `refresh_page` is set."""
    buffer = RingBuffer(total)
    feed = Feed(settings, buffer)
    refresher = None
    if refresh_page is not None:
        live.install(feed)  # the page shows this feed, at the real time
        refresher = Refresher(refresh_page)
        refresher.start()
        while not refresher.times and refresher.error is None:  # first (cold) render done: then start
            time.sleep(0.01)
    try:
        start = time.perf_counter()
        feed.start()
        stop_at = time.monotonic() + deadline_s
        while buffer.total_appended < total:
            if time.monotonic() > stop_at:
                raise TimeoutError(f"feed read {buffer.total_appended} of {total} in {deadline_s:.0f} s")
            time.sleep(0.005)
        seconds = time.perf_counter() - start
    finally:
        feed.stop()
        if refresher is not None:
            refresher.stop.set()
            refresher.join(60)
            live.install(None)
    if refresher is not None and refresher.error is not None:
        raise RuntimeError(f"refresher failed: {refresher.error!r}")
    renders = tuple(refresher.times[1:]) if refresher is not None else ()
    return FeedRun(buffer.total_appended / seconds, seconds, renders)


# --- report -----------------------------------------------------------------------------------


def fmt_size(n: int) -> str:
    return f"{n:,}"


def render_table(sizes: list[int], results: dict[int, dict[tuple[str, str], Timing]]) -> str:
    head = "| page | filter | " + " | ".join(f"{fmt_size(n)} rows" for n in sizes) + " |"
    rule = "|---|---|" + "---|" * len(sizes)
    lines = [head, rule]
    for name in FILTERS:
        for page in PAGES:
            cells = []
            for n in sizes:
                cells.append(results[n][(page, name)].cell())
            lines.append(f"| {page} | {name} | " + " | ".join(cells) + " |")
    errors = {
        f"{page} ({name}, {fmt_size(n)} rows): {t.error}"
        for n, timings in results.items()
        for (page, name), t in timings.items()
        if t.error is not None
    }
    if errors:
        lines += ["", "Pages that raised:", "", *(f"- {e[:300]}" for e in sorted(errors))]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="buffered transactions, comma-separated")
    parser.add_argument("--runs", default="30,30,20", help="timed runs per page at each size")
    parser.add_argument("--feed-events", type=int, default=600_000)
    parser.add_argument("--feed-repeats", type=int, default=3, help="pairs of feed runs (alone, with refresher)")
    parser.add_argument("--refresh-page", default="overview", choices=PAGES)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2k/20k rows, 3 runs, 60k feed messages")
    parser.add_argument("--profile", choices=PAGES, help="only profile this page's script run at the largest size")
    parser.add_argument("--profile-filter", default="none", choices=list(FILTERS))
    parser.add_argument("--write", action="store_true", help="write the results into BENCHMARKS.md")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.runs, args.feed_events, args.feed_repeats = "2000,20000", "3,3", 60_000, 1
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = [int(r) for r in args.runs.split(",")]
    runs += [runs[-1]] * (len(sizes) - len(runs))
    logging.basicConfig(level=logging.WARNING)
    quiet_streamlit()
    share_script_cache()
    wall = time.perf_counter()
    load_before = os.getloadavg()[0]

    base_rows = max(sizes)
    print(f"drawing {base_rows:,} Pulse events over {DAYS:g} days and decoding them ...", flush=True)
    base = pulse_batch(base_rows, NOW_S - DAYS * DAY_S, NOW_S)
    fresh = take(base, np.arange(len(base) - FRESH_ROWS, len(base)))

    if args.profile:
        n = max(sizes)
        buffer = filled(sized(base, n))
        print(profile_page(buffer, fresh, args.profile, FILTERS[args.profile_filter], runs[-1]))
        return 0

    largest = sized(base, max(sizes))
    print(f"bytes per transaction at {max(sizes):,} rows ...", flush=True)
    mem = memory(largest)
    del largest
    gc.collect()

    floor = apptest_floor()
    results: dict[int, dict[tuple[str, str], Timing]] = {}
    snapshots: dict[int, float] = {}
    for n, r in zip(sizes, runs, strict=True):
        print(f"render: {n:,} rows, {r} runs per page and filter ...", flush=True)
        buffer = filled(sized(base, n))
        snapshots[n] = snapshot_ms(buffer, fresh)
        results[n] = render_times(buffer, fresh, r)
        del buffer
        gc.collect()
        for name in FILTERS:
            row = ", ".join(f"{p} {results[n][(p, name)].cell().replace('**', '')}" for p in PAGES)
            print(f"  [{name}] script p50 / p95 · CPU p95 ms: {row}", flush=True)

    settings = Settings.from_env()
    topic = f"bench.dashboard.{uuid.uuid4().hex[:8]}"
    print(f"feed: pre-producing {args.feed_events:,} events to {topic} ...", flush=True)
    pre_produce(settings, topic, args.feed_events)
    total = message_count(settings, topic)
    feed_settings = replace(
        settings,
        transactions_topic=topic,
        error_topic=f"{topic}.errors",  # absent: the health probe's error-log count stays idle
        ingest_group=f"bench-{uuid.uuid4().hex[:8]}",
        buffer_capacity=total,
    )
    alone: list[FeedRun] = []
    refreshed: list[FeedRun] = []
    try:
        for i in range(args.feed_repeats):
            alone.append(feed_rate(feed_settings, total, None))
            refreshed.append(feed_rate(feed_settings, total, args.refresh_page))
            renders = refreshed[-1].renders
            print(
                f"  run {i + 1}: alone {alone[-1].rate:,.0f} msg/s, with {args.refresh_page} refreshing"
                f" {refreshed[-1].rate:,.0f} msg/s ({len(renders)} renders, median"
                f" {1000 * statistics.median(renders) if renders else math.nan:.0f} ms,"
                f" max {1000 * max(renders, default=math.nan):.0f} ms)",
                flush=True,
            )
    finally:
        delete_topics(settings, [topic])
    feed_alone = statistics.median(r.rate for r in alone)
    feed_refreshed = statistics.median(r.rate for r in refreshed)
    paired = statistics.median(b.rate / a.rate for a, b in zip(alone, refreshed, strict=True))
    all_renders = [t for r in refreshed for t in r.renders]

    # --- tables and targets
    render = render_table(sizes, results)
    harness = 1000 * statistics.median(
        a - b for timings in results.values() for t in timings.values() for a, b in zip(t.total, t.script, strict=True)
    )
    hits = [
        (1000 * g, page, name, n)
        for n, timings in results.items()
        for (page, name), t in timings.items()
        for g in t.gc
        if g > 0
    ]
    runs_timed = sum(len(t.script) for timings in results.values() for t in timings.values())
    gc_line = (
        f"Full (generation 2) passes of Python's garbage collector hit {len(hits)} of {runs_timed} timed runs"
        " (they land on whichever run triggers them; most p95 outliers are these): "
        + ", ".join(f"{page} ({name}, {fmt_size(n)} rows) {ms:.0f} ms" for ms, page, name, n in sorted(hits)[::-1][:12])
        + (f" and {len(hits) - 12} more" if len(hits) > 12 else "")
        + "."
        if hits
        else f"No full (generation 2) garbage-collector pass hit any of the {runs_timed} timed runs."
    )
    snap_line = ", ".join(f"{fmt_size(n)}: {ms:.1f} ms" for n, ms in snapshots.items())
    feed_table = "\n".join(
        [
            "| feed reading a backlog of | alone msg/s | with pages refreshing msg/s | ratio (median of pairs) |",
            "|---|---|---|---|",
            f"| {total:,} messages, {len(alone)} run(s) each | {feed_alone:,.0f} | {feed_refreshed:,.0f} |"
            f" {paired:.2f} |",
        ]
    )
    mem_table = "\n".join(
        [
            f"| bytes per buffered transaction ({mem.rows:,} rows) | bytes |",
            "|---|---|",
            f"| `buffer.nbytes() / capacity` (columns + dictionaries) | {mem.nbytes:.0f} |",
            f"| tracemalloc, creating and filling the buffer | {mem.traced:.0f} |",
            f"| RSS growth, creating and filling the buffer | {mem.rss:.0f} |",
            f"| one snapshot (a reader's copy; the buffer caches the latest) | {mem.snapshot:.0f} |",
        ]
    )
    targets = []
    for n, limit in P95_TARGET_MS.items():
        timed = {k: t for k, t in results.get(n, {}).items() if t.error is None}
        if timed:
            worst_key, worst = max(((k, t.ms("script", 0.95)) for k, t in timed.items()), key=lambda kv: kv[1])
            cpu_key, cpu = max(((k, t.ms("cpu", 0.95)) for k, t in timed.items()), key=lambda kv: kv[1])
            clean_key, clean = max(((k, t.without_gc(0.95)) for k, t in timed.items()), key=lambda kv: kv[1])
            raised = len(results[n]) - len(timed)
            targets.append(
                f"- p95 render of every page at {n:,} rows ≤ {limit:,.0f} ms: "
                + (verdict(worst <= limit) if not raised else f"**not verified** ({raised} page runs raised)")
                + f" (worst wall p95: {worst_key[0]}, filter {worst_key[1]}, {worst:.0f} ms;"
                f" worst CPU p95: {cpu_key[0]}, filter {cpu_key[1]}, {cpu:.0f} ms;"
                f" worst p95 of the runs no full GC hit: {clean_key[0]}, filter {clean_key[1]}, {clean:.0f} ms)"
            )
        else:
            targets.append(f"- p95 render at {n:,} rows ≤ {limit:,.0f} ms: not measured in this run")
    targets.append(
        f"- feed keeps up with ≥ {FEED_TARGET:,.0f} msg/s while pages refresh: {verdict(feed_refreshed >= FEED_TARGET)}"
        f" ({feed_refreshed:,.0f} msg/s)"
    )
    targets.append(
        f"- ≤ {BYTES_TARGET:.0f} bytes per transaction: {verdict(mem.nbytes <= BYTES_TARGET)}"
        f" ({mem.nbytes:.0f} by nbytes; {mem.rss:.0f} resident; {mem.nbytes + mem.snapshot:.0f} with one snapshot)"
    )
    renders_note = (
        f"{len(all_renders)} renders of {args.refresh_page} during the runs with pages refreshing:"
        f" median {1000 * statistics.median(all_renders):.0f} ms, max {1000 * max(all_renders):.0f} ms"
        if all_renders
        else "no render finished during the runs with pages refreshing"
    )
    body = "\n".join(
        [
            "Page render time in ms: wall time of the server-side script run (app.py on that page, fresh"
            " snapshot) p50 / **p95** · p95 of the script thread's CPU time (less sensitive to other work on the"
            " machine):",
            "",
            render,
            "",
            f"AppTest around each script run (at.run minus script, median over all runs): {harness:.1f} ms;"
            f" a one-element script: script {floor.ms('script', 0.5):.1f} ms, at.run {floor.ms('total', 0.5):.1f} ms"
            f" (median). Copying a fresh snapshot, part of every run above: {snap_line} (median).",
            "",
            gc_line,
            "",
            feed_table,
            "",
            renders_note + ".",
            "",
            mem_table,
            "",
            "Targets (2 cores):",
            "",
            *targets,
            "",
        ]
    )
    elapsed = time.perf_counter() - wall
    body += (
        f"\nRun took {elapsed:.0f} s; 1-minute load average {load_before:.1f} at the start,"
        f" {os.getloadavg()[0]:.1f} at the end (other work on the machine shows here).\n"
    )
    print("\n" + body)
    if args.write:
        command = shlex.join(["python", "bench/dashboard.py", *sys.argv[1:]])
        write_section(
            "dashboard",
            f"## Dashboard\n\nCommand: `{command}` ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores;"
            " method in the docstring of bench/dashboard.py)\n\n" + body,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
