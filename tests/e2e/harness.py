"""The e2e harness: the known data set and what the dashboard must show for it, the server, a browser tab.

Plain code, no fixtures (those are in conftest.py), so the tests can import it.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from playwright.sync_api import Locator, Page, expect

from dashboard.core.timeunits import MINUTE_MS
from dashboard.store.decode import RawMessage
from dashboard.ui import serve
from tests import synthetic as syn

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 900}
START_TIMEOUT = 60.0  # seconds until /_stcore/health answers
STOP_TIMEOUT = 10.0  # seconds between terminate and kill
DEADLINE_MS = 30_000  # for what a page shows: a first render imports pandas and Altair and backfills the feed

# The data set: 6 merchants, about 10 % invalid. "Recent" events lie in the last
# 3 minutes, "older" ones 7 to 11 minutes back: the 5-minute window holds only the
# recent ones (for two minutes after production), 15 minutes and "all" hold all.
MERCHANTS = 6
RECENT, RECENT_SPAN_MS = 239, 3 * MINUTE_MS
OLDER, OLDER_END_MS, OLDER_SPAN_MS = 60, 7 * MINUTE_MS, 4 * MINUTE_MS


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Dataset:
    """The events produced and the figures the dashboard must show for them (from `syn.reference`)."""

    events: tuple[syn.Event, ...]
    reference: pd.DataFrame = field(repr=False)

    @property
    def total(self) -> int:
        """Number of events produced."""
        return len(self.events)

    def rows(self, *merchants: str) -> pd.DataFrame:
        """Reference rows of `merchants` (every row when none is given)."""
        ref = self.reference
        return ref[ref["merchant_id"].isin(merchants)] if merchants else ref

    def count(self, *merchants: str) -> int:
        """Transactions of `merchants` (all when none is given)."""
        return len(self.rows(*merchants))

    def amount(self, *merchants: str) -> float:
        """Sum of the amounts of the valid transactions of `merchants` (all when none is given).

        Money figures count valid transactions only: an invalid one's amount is not trusted.
        """
        rows = self.rows(*merchants)
        return float(rows.loc[rows["valid"], "amount"].sum())

    def priced(self) -> int:
        """Valid transactions with a known amount (what the average divides by)."""
        ref = self.reference
        return int((ref["valid"] & ref["amount"].notna()).sum())

    def approval_rate(self) -> float:
        """Approved transactions among those with a known status."""
        status = self.reference["status"]
        return float((status == "approved").sum() / (status != "").sum())

    @property
    def invalid(self) -> int:
        """Transactions breaking at least one rule."""
        return int((~self.reference["valid"]).sum())

    def by_code(self) -> dict[str, int]:
        """Transactions breaking each rule, per error code."""
        out: dict[str, int] = {}
        for event in self.events:
            for code in event.codes:
                out[code] = out.get(code, 0) + 1
        return out

    def ranked_merchants(self) -> list[str]:
        """Merchant ids, most transactions first (ties by id), without the undecodable rows' empty id."""
        counts = self.reference[self.reference["merchant_id"] != ""].groupby("merchant_id").size()
        return sorted(counts.index, key=lambda m: (-counts[m], m))

    def in_window(self, window_ms: int, now_ms: int) -> tuple[int, int]:
        """Return the transactions with a Kafka timestamp in the last `window_ms` before `now_ms`,
        and the epoch ms until which that count stays the same (the oldest of them leaves the window)."""
        ts = self.reference["kafka_ts_ms"]
        inside = ts[ts >= now_ms - window_ms]
        until = int(inside.min()) + window_ms if len(inside) else 2**62
        return len(inside), until


def _hostile(template: syn.Event, kafka_ts_ms: int) -> syn.Event:
    """A valid event like `template` whose merchant_id is an HTML injection attempt."""
    assert template.record is not None and not template.codes
    record = {
        **template.record,
        "transaction_id": str(uuid.uuid4()),
        "merchant_id": syn.XSS,
        "timestamp": _iso(kafka_ts_ms - 150),
    }
    return syn.Event(RawMessage(orjson.dumps(record), kafka_ts_ms, 0, 0), record, ())


def make_events(now_ms: int) -> list[syn.Event]:
    """The e2e data set at `now_ms`: older, then recent events, then the one hostile merchant id."""
    common = {"merchants": MERCHANTS, "invalid_share": 0.1, "xss": False}
    older = syn.events(OLDER, now_ms=now_ms - OLDER_END_MS, span_ms=OLDER_SPAN_MS, seed=31, **common)
    recent = syn.events(RECENT, now_ms=now_ms, span_ms=RECENT_SPAN_MS, seed=32, **common)
    template = next(e for e in reversed(recent) if e.record is not None and not e.codes)
    return [*older, *recent, _hostile(template, now_ms - 500)]


def payment(customer: str, ts_ms: int, lat: float, lng: float, rng: random.Random) -> dict[str, Any]:
    """A valid, approved payment of `customer` at `ts_ms` and (lat, lng), as the transactions topic carries it."""
    amount = rng.randint(50_000, 900_000)
    commission, vat = int(amount * 0.02), int(amount * 0.09)
    return {
        "transaction_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms / 1000)) + f".{ts_ms % 1000:03d}Z",
        "customer_id": customer,
        "merchant_id": "merch_3",
        "merchant_category": "retail",
        "payment_method": "pos",
        "amount": amount,
        "location": {"lat": lat, "lng": lng},
        "device_info": {},
        "status": "approved",
        "commission_type": "flat",
        "commission_amount": commission,
        "vat_amount": vat,
        "total_amount": amount + commission + vat,
        "customer_type": "individual",
        "risk_level": 5,
        "failure_reason": None,
    }


def fraud_patterns(now_ms: int, burst: str, geo: str, seed: int = 5) -> list[tuple[bytes, bytes, int]]:
    """Messages (key, value, Kafka ms) of two fraud patterns: 7 payments of `burst` in 48 s (velocity)
    and 2 payments of `geo` 90 s and 700 km apart (impossible travel); the worker raises one alert each."""
    rng = random.Random(seed)
    events = [payment(burst, now_ms - 60_000 + i * 8_000, 35.70, 51.33, rng) for i in range(7)]
    events += [payment(geo, now_ms - 120_000, 35.72, 51.33, rng), payment(geo, now_ms - 30_000, 29.59, 52.58, rng)]
    return [(e["customer_id"].encode(), orjson.dumps(e), now_ms) for e in events]


def free_port() -> int:
    """A TCP port free on localhost right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class App:
    """The running dashboard server (`python -m dashboard.ui`): its base URL and its log."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the server's output."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def running_app(env: dict[str, str], log: Path) -> Iterator[App]:
    """Run the dashboard server (`python -m dashboard.ui`) on a free port with `env` until the block ends."""
    log.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = serve.command("--server.port", str(port))  # the product's command; .streamlit/config.toml applies
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = App(f"http://localhost:{port}", log, process)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not healthy(server.url):
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit not healthy within {START_TIMEOUT:.0f} s:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def healthy(url: str) -> bool:
    """True when the Streamlit server at `url` answers its health check with "ok"."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


@dataclass
class Session:
    """One browser tab on the app (its own Streamlit session) and the dialogs it raised."""

    page: Page
    app: App
    dialogs: list[str]

    def open(self, path: str = "", **query: str | list[str]) -> None:
        """Load `path` (a page's url_path, "" for the default page) with `query` parameters."""
        pairs = [(k, v) for k, values in query.items() for v in ([values] if isinstance(values, str) else values)]
        self.page.goto(f"{self.app.url}/{path}" + ("?" + urllib.parse.urlencode(pairs) if pairs else ""))


def screenshot(page: Page, path: Path) -> Path:
    """Save the viewport to `path`, the mouse moved off the page (no hover effects), and return the path."""
    page.mouse.move(-1, -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path


def wait_charts(page: Page, timeout_ms: float = 30_000) -> None:
    """Wait until every Altair chart on the page has drawn (for readable screenshots and measurements)."""
    charts = page.get_by_test_id("stVegaLiteChart")
    for i in range(charts.count()):
        expect(charts.nth(i).locator("canvas, svg.marks").first).to_be_visible(timeout=timeout_ms)


# -- reading a page ---------------------------------------------------------------
def diagnose(s: Session) -> str:
    """The page's URL, exception and alert texts, and the Streamlit log tail: appended to every failure."""
    page = s.page
    return (
        f"\nurl: {page.url}"
        f"\nexceptions: {page.get_by_test_id('stException').all_inner_texts()}"
        f"\nalerts: {page.get_by_test_id('stAlert').all_inner_texts()}"
        f"\n--- streamlit log tail ---\n{s.app.log_tail()}"
    )


def expect_text(s: Session, locator: Locator, expected: str | re.Pattern[str], what: str) -> None:
    """Wait until `locator` shows exactly `expected`; fail with `what` and the diagnosis."""
    try:
        expect(locator).to_have_text(expected, timeout=DEADLINE_MS)
    except AssertionError as exc:
        raise AssertionError(f"{what}: {exc}{diagnose(s)}") from None


def metric_card(page: Page, label: str) -> Locator:
    """The st.metric labelled exactly `label`."""
    name = page.get_by_test_id("stMetricLabel").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return page.get_by_test_id("stMetric").filter(has=name)


def metric(page: Page, label: str) -> Locator:
    """The value element of the st.metric labelled exactly `label`."""
    return metric_card(page, label).get_by_test_id("stMetricValue")


def expect_metric(s: Session, label: str, expected: str) -> None:
    """Wait until the metric `label` shows `expected`."""
    expect_text(s, metric(s.page, label), expected, f"metric {label!r} on {s.page.url}")


def assert_no_exception(s: Session, where: str) -> None:
    """Fail when the page shows a Streamlit exception element."""
    errors = s.page.get_by_test_id("stException")
    if errors.count():
        pytest.fail(f"{where} shows an exception:\n{errors.all_inner_texts()}{diagnose(s)}")


def assert_inert(s: Session, where: str) -> None:
    """Fail when message content became markup: an <img src=x> or onerror element, a script that ran
    (tests.hostile's SCRIPT sets window.__darooghe_injected), a dialog, or an exception on the page."""
    page = s.page
    assert page.locator('img[src="x"], [onerror]').count() == 0, f"{where}: an element was injected"
    assert page.locator("script").filter(has_text="__darooghe_injected").count() == 0, f"{where}: a script"
    assert page.evaluate("() => window.__darooghe_injected") is None, f"{where}: the script ran"
    assert s.dialogs == [], f"{where}: dialogs fired: {s.dialogs}"
    assert_no_exception(s, where)


def grid_cells(page: Page) -> Locator:
    """The cells of every st.dataframe, from the grid's accessibility table.

    The grid draws on a canvas; the table beside it holds the cell texts but
    is not visible, so `get_by_role` (which skips hidden elements) misses it.
    """
    return page.get_by_test_id("stDataFrame").locator('[role="gridcell"]')


def caption(s: Session, shown: int, buffered: int) -> Locator:
    """The selection caption "<shown> of <buffered> buffered transactions · ..."."""
    return s.page.get_by_test_id("stCaptionContainer").filter(
        has_text=f"{shown:,} of {buffered:,} buffered transactions"
    )
