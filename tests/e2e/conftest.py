"""Fixtures of the end-to-end tests: a known data set on fresh topics, `python -m dashboard.ui`, headless Chromium.

The data set, the server and the browser are built once per module (they
cost seconds); every test gets its own browser context, so its own Streamlit
session, with every dialog recorded. Failures carry the server's log tail.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from playwright.sync_api import Browser, Dialog, sync_playwright

from tests import synthetic as syn
from tests.e2e.harness import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    VIEWPORT,
    App,
    Dataset,
    Session,
    make_events,
    running_app,
)
from tests.kafka.kafkatools import create_topic, produce


@pytest.fixture(scope="module")
def e2e_env(bootstrap: str) -> Iterator[dict[str, str]]:
    """Environment with fresh uuid topics and group, like `kafka_env` but for the whole module.

    (`kafka_env` is function-scoped, and the server outlives one test.) The
    three topics are created here and deleted at teardown. STALE_SECONDS is
    an hour: the data set is produced once, and the "not live" banner would
    otherwise cover every page (and the README screenshot) after 10 s.
    """
    tag = uuid.uuid4().hex[:10]
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        TRANSACTIONS_TOPIC=f"test.e2e.transactions.{tag}",
        ERROR_TOPIC=f"test.e2e.error_logs.{tag}",
        FRAUD_TOPIC=f"test.e2e.fraud_alerts.{tag}",
        ROLLUPS_TOPIC=f"test.e2e.rollups.{tag}",
        INGEST_GROUP=f"test.e2e.ingest.{tag}",
        STALE_SECONDS="3600",
        PYTHONPATH=str(ROOT),
    )
    topics = [env["TRANSACTIONS_TOPIC"], env["ERROR_TOPIC"], env["FRAUD_TOPIC"], env["ROLLUPS_TOPIC"]]
    for topic in topics:
        create_topic(bootstrap, topic)
    yield env
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(topics, operation_timeout=30).values():
        try:
            future.result(30)
        except Exception as exc:  # best effort: a leftover uuid topic harms nobody
            print(f"could not delete a test topic: {exc}")


@pytest.fixture(scope="module")
def dataset(e2e_env: dict[str, str]) -> Dataset:
    """Produce the known events (Kafka timestamps of the last minutes) to the transactions topic."""
    evs = make_events(int(time.time() * 1000))
    messages = [(None, e.message.value, e.message.kafka_ts_ms) for e in evs]
    assert produce(e2e_env["KAFKA_BOOTSTRAP_SERVERS"], e2e_env["TRANSACTIONS_TOPIC"], messages) == len(evs)
    return Dataset(tuple(evs), syn.reference(evs))


@pytest.fixture(scope="module")
def app(e2e_env: dict[str, str], dataset: Dataset) -> Iterator[App]:
    """`python -m dashboard.ui` on a free port, reading the data set; stopped (terminate, then kill) at the end."""
    with running_app(e2e_env, ARTIFACTS / "streamlit.log") as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium driven by Playwright (browser downloads are not possible here)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def session(browser: Browser, app: App) -> Iterator[Session]:
    """A fresh browser context (1400x900, dark scheme) on the app; every dialog is recorded and dismissed."""
    context = browser.new_context(viewport=VIEWPORT, color_scheme="dark")
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield Session(page, app, dialogs)
    finally:
        context.close()
