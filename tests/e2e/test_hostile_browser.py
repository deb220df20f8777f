"""The hostile corpus in the browser: the dashboard counts what Kafka holds, shows no traceback, runs no HTML.

Every message of tests/hostile.py sits between two canaries on one partition
of a fresh topic; `python -m dashboard.ui` reads it, and headless Chromium
reads the counts off the pages as a user would: the Overview's
"Transactions" counter and the selection caption ("N of N buffered
transactions") must equal the topic's message count from Kafka, the
Validation page's invalid count that of the full check, and no page visited
may show an exception. One message holds `<img src=x onerror=...>` and a
`<script>`: they show as cell and JSON text and create no element.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from dashboard.core.settings import Settings
from dashboard.core.validation import check
from dashboard.kafka.admin import message_count
from tests import synthetic as syn
from tests.e2e.harness import (
    ARTIFACTS,
    DEADLINE_MS,
    App,
    Session,
    assert_inert,
    assert_no_exception,
    caption,
    expect_metric,
    grid_cells,
    running_app,
)
from tests.hostile import NOW_MS, SCRIPT, between_canaries
from tests.kafka.kafkatools import produce

pytestmark = [pytest.mark.browser, pytest.mark.kafka]


@pytest.fixture(scope="module")
def corpus(e2e_env: dict[str, str]) -> list[bytes | None]:
    """The hostile corpus between canaries, produced to partition 0 of the module's transactions topic."""
    values = between_canaries(NOW_MS)
    messages = [(None, v, NOW_MS) for v in values]
    assert produce(e2e_env["KAFKA_BOOTSTRAP_SERVERS"], e2e_env["TRANSACTIONS_TOPIC"], messages, partition=0) == len(
        values
    )
    return values


@pytest.fixture(scope="module")
def app(e2e_env: dict[str, str], corpus: list[bytes | None]) -> Iterator[App]:
    """`python -m dashboard.ui` on the hostile topic (this module's `session` fixture opens tabs on it)."""
    with running_app(e2e_env, ARTIFACTS / "hostile-streamlit.log") as server:
        yield server


def test_every_page_counts_the_topics_messages_and_shows_no_exception(
    session: Session, e2e_env: dict[str, str], corpus: list[bytes | None]
) -> None:
    """Overview, Live feed and Validation each say "N of N buffered transactions", N = Kafka's message count."""
    s = session
    settings = dataclasses.replace(
        Settings(),
        bootstrap_servers=e2e_env["KAFKA_BOOTSTRAP_SERVERS"],
        transactions_topic=e2e_env["TRANSACTIONS_TOPIC"],
    )
    total = message_count(settings, settings.transactions_topic)
    assert total == len(corpus)  # what Kafka holds is what was produced: no transaction markers, nothing lost
    invalid = sum(1 for value in corpus if check(value, NOW_MS).codes)
    assert 0 < invalid < total  # the corpus's valid messages and canaries: both counts are told apart

    s.open()
    expect_metric(s, "Transactions", f"{total:,}")
    expect(caption(s, total, total)).to_be_visible(timeout=DEADLINE_MS)
    assert_no_exception(s, "Overview")

    s.open("live_feed")
    expect(caption(s, total, total)).to_be_visible(timeout=DEADLINE_MS)
    expect(grid_cells(s.page).filter(has_text="canary-")).not_to_have_count(0, timeout=DEADLINE_MS)
    assert_no_exception(s, "Live feed")

    s.open("validation")
    expect(caption(s, total, total)).to_be_visible(timeout=DEADLINE_MS)
    expect_metric(s, "Invalid transactions", f"{invalid:,}")
    assert_no_exception(s, "Validation")

    s.open()  # and nothing was counted twice meanwhile
    expect_metric(s, "Transactions", f"{total:,}")
    assert_no_exception(s, "Overview, again")


def test_html_in_a_message_shows_as_text_and_creates_no_element(session: Session) -> None:
    """The corpus's merchant id `<img src=x onerror=alert(1)>` and transaction id `<script>...`: text only."""
    s = session
    page = s.page

    # Live feed, filtered to the hostile merchant: its one row shows the merchant id as cell text (the
    # transaction column lies beyond the grid's 1400 px, which draws only the columns in view).
    s.open("live_feed", merchant=syn.XSS)
    cells = grid_cells(page).filter(has_text=syn.XSS)
    expect(cells).to_have_count(1, timeout=DEADLINE_MS)
    expect(cells).to_have_text(syn.XSS)
    assert_inert(s, "Live feed")

    # Overview, same filter: one transaction, its raw message shows both ids inside the JSON.
    s.open(merchant=syn.XSS)
    expect_metric(s, "Transactions", "1")
    for text in (syn.XSS, SCRIPT):
        expect(page.get_by_test_id("stJson")).to_contain_text(text, timeout=DEADLINE_MS)
    assert_inert(s, "Overview")
