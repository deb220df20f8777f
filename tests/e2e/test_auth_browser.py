"""Who may look, end to end: a real OpenID Connect provider, `python -m dashboard.ui`, headless Chromium.

The provider is `oidc-provider-mock` (a real OIDC server on localhost, in a
thread); the app reads Streamlit secrets from a temporary file (via
STREAMLIT_SECRETS_FILES) and goes through the full authorization-code flow:
the browser is sent to the provider's authorize form, picks a user there,
comes back with a code that Streamlit (Authlib) exchanges for tokens. The
data are the e2e module's known events and a few fraud alerts about them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from oidc_provider_mock import User, run_server_in_thread
from playwright.sync_api import Browser, Page, expect

from dashboard.core.schema import FRAUD_GEO, FRAUD_VELOCITY
from dashboard.fraud.rules import Alert
from tests.e2e.harness import ARTIFACTS, VIEWPORT, App, Dataset, running_app, screenshot
from tests.kafka.kafkatools import produce

pytestmark = [pytest.mark.browser, pytest.mark.kafka]

DEADLINE_MS = 30_000
ANALYST = User(
    sub="ana@corp.example", claims={"email": "ana@corp.example", "name": "Ana Analyst", "email_verified": True}
)
VIEWER = User(sub="wall@corp.example", claims={"email": "wall@corp.example", "name": "Wall Screen"})
OUTSIDER = User(sub="eve@elsewhere.example", claims={"email": "eve@elsewhere.example", "name": "Eve Outsider"})
FULL_ID = re.compile(r"cust_\d")
MASKED_ID = re.compile(r"cust_…[0-9a-z]{6}")
#: Streamlit saves a CSV through the File System Access API when the browser has it; without it,
#: through an ordinary download, which Playwright captures.
NO_SAVE_PICKER = "delete window.showSaveFilePicker;"


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    """A real OIDC provider on a free localhost port, knowing the three users."""
    with run_server_in_thread(user_claims=[ANALYST, VIEWER, OUTSIDER]) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def alerts(e2e_env: dict[str, str], dataset: Dataset) -> list[str]:
    """Two fraud alerts about the data set's customers on the module's alert topic; their customer ids."""
    records = [e.record for e in dataset.events if e.record is not None and not e.codes]
    velocity = [r for r in records if r["customer_id"] == records[0]["customer_id"]][:1] + records[1:6]
    geo = records[10:12]
    now = int(time.time() * 1000)
    made = [
        Alert(FRAUD_VELOCITY, velocity[0]["customer_id"], tuple(r["transaction_id"] for r in velocity), {}, now),
        Alert(FRAUD_GEO, geo[0]["customer_id"], tuple(r["transaction_id"] for r in geo), {}, now),
    ]
    messages = [(a.customer_id.encode(), a.to_json({"partition": 0, "offset": i}), now) for i, a in enumerate(made)]
    assert produce(e2e_env["KAFKA_BOOTSTRAP_SERVERS"], e2e_env["FRAUD_TOPIC"], messages) == len(made)
    return [a.customer_id for a in made]


@pytest.fixture(scope="module")
def auth_app(
    e2e_env: dict[str, str], issuer: str, alerts: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[App]:
    """The app with an [auth] section (the provider above) and the allow-lists; secrets in a temp file."""
    secrets = tmp_path_factory.mktemp("auth") / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        'redirect_uri = "http://localhost:{port}/oauth2callback"\n'  # Streamlit fills in its port
        f'cookie_secret = "{os.urandom(16).hex()}"\n'
        'client_id = "darooghe-live"\n'
        'client_secret = "e2e-client-secret"\n'
        f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n'
    )
    env = {
        **e2e_env,
        "STREAMLIT_SECRETS_FILES": str(secrets),
        "DASHBOARD_ALLOWED": "@corp.example",
        "DASHBOARD_ANALYSTS": "ana@corp.example",
    }
    with running_app(env, ARTIFACTS / "auth-streamlit.log") as server:
        yield server


@pytest.fixture(scope="module")
def open_app(e2e_env: dict[str, str], alerts: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """The app without any secrets file (a developer's own .streamlit/secrets.toml is not read)."""
    env = {**e2e_env, "STREAMLIT_SECRETS_FILES": str(tmp_path_factory.mktemp("open") / "absent.toml")}
    with running_app(env, ARTIFACTS / "open-streamlit.log") as server:
        yield server


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context: no cookie, so its own sign-in."""
    context = browser.new_context(viewport=VIEWPORT, color_scheme="dark", accept_downloads=True)
    context.add_init_script(NO_SAVE_PICKER)
    try:
        yield context.new_page()
    finally:
        context.close()


def diagnose(page: Page, app: App) -> str:
    return f"\nurl: {page.url}\n--- streamlit log tail ---\n{app.log_tail()}"


def sign_in(page: Page, app: App, issuer: str, user: User) -> None:
    """Open the app, press Sign in, pick `user` on the provider's authorize form, come back signed in."""
    page.goto(app.url)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{issuer}/oauth2/authorize**", timeout=DEADLINE_MS)
    page.get_by_role("button", name=user.sub, exact=True).click()
    page.wait_for_url(f"{app.url}/**", timeout=DEADLINE_MS)
    try:
        expect(page.get_by_text(re.compile(r"Signed in as"))).to_be_visible(timeout=DEADLINE_MS)
    except AssertionError as exc:
        raise AssertionError(f"{exc}{diagnose(page, app)}") from None


def grid_text(page: Page) -> str:
    """The cell texts of every st.dataframe (from the grid's accessibility table)."""
    return "\n".join(page.get_by_test_id("stDataFrame").locator('[role="gridcell"]').all_inner_texts())


def wait_for_data(page: Page, app: App, title: str) -> None:
    """Wait until the page's title and its data (a counter or a table) are shown."""
    data = page.get_by_test_id("stMetric").or_(page.get_by_test_id("stDataFrame"))
    try:
        expect(page.locator("h1").first).to_have_text(title, timeout=DEADLINE_MS)
        expect(data.first).to_be_visible(timeout=DEADLINE_MS)
    except AssertionError as exc:
        raise AssertionError(f"{title}: {exc}{diagnose(page, app)}") from None


def download_csv(page: Page, table: int) -> str:
    """Download the `table`-th st.dataframe of the page as CSV (its toolbar's button) and return the text."""
    frame = page.get_by_test_id("stDataFrame").nth(table)
    frame.hover()
    container = frame.locator("xpath=ancestor::*[@data-testid='stElementContainer'][1]")
    with page.expect_download(timeout=DEADLINE_MS) as info:
        container.get_by_role("button", name="Download as CSV").click()
    return Path(info.value.path()).read_text(encoding="utf-8-sig")


def top_customers(page: Page, app: App) -> str:
    """Open the Customers page and return its most-active-customers table as downloaded CSV."""
    page.goto(f"{app.url}/customers")
    wait_for_data(page, app, "Customers")
    expect(page.get_by_test_id("stDataFrame")).to_have_count(2, timeout=DEADLINE_MS)
    expect(page.get_by_test_id("stDataFrame").nth(1)).to_contain_text("cust_", timeout=DEADLINE_MS)
    return download_csv(page, 1)


def test_an_analyst_sees_customer_ids_in_full(page: Page, auth_app: App, issuer: str) -> None:
    sign_in(page, auth_app, issuer, ANALYST)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Ana Analyst")
    expect(page.get_by_test_id("stSidebar")).to_contain_text("analyst")
    csv = top_customers(page, auth_app)
    assert FULL_ID.search(csv) and not MASKED_ID.search(csv), csv[:300]
    assert FULL_ID.search(grid_text(page))


def test_a_viewer_sees_masked_ids_on_every_page_and_in_downloads(
    page: Page, auth_app: App, issuer: str, alerts: list[str]
) -> None:
    sign_in(page, auth_app, issuer, VIEWER)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Wall Screen")
    expect(page.get_by_test_id("stJson")).to_contain_text("cust_…", timeout=DEADLINE_MS)  # the latest message
    links = page.get_by_test_id("stSidebarNav").get_by_role("link")
    titles = [link.inner_text().splitlines()[-1].strip() for link in links.all()]
    assert len(titles) >= 9, titles
    for title in titles:
        links.filter(has_text=title).click()  # in-app navigation: the same session, as a person would
        wait_for_data(page, auth_app, title)
        html = page.content()  # every text of the page, hidden accessibility tables included
        assert not FULL_ID.search(html), f"{title}: a full id {FULL_ID.search(html)} is shown to a viewer"
    links.filter(has_text="Fraud").click()
    wait_for_data(page, auth_app, "Fraud")
    # The alerts' customers, pseudonymised:
    expect(page.get_by_test_id("stDataFrame").first).to_contain_text(MASKED_ID, timeout=DEADLINE_MS)
    assert not FULL_ID.search(grid_text(page))
    screenshot(page, ARTIFACTS / "viewer-fraud.png")
    csv = top_customers(page, auth_app)
    assert MASKED_ID.search(csv) and not FULL_ID.search(csv), csv[:300]


def test_the_wall_screen_keeps_its_sign_in_and_shows_masked_data_in_kiosk_mode(
    page: Page, auth_app: App, issuer: str, dataset: Dataset
) -> None:
    sign_in(page, auth_app, issuer, VIEWER)
    page.goto(f"{auth_app.url}/?kiosk=1")  # the bookmark, opened later: the auth cookie signs it in
    wait_for_data(page, auth_app, "Overview")
    expect(page.get_by_test_id("stSidebar")).to_be_hidden()
    expect(page.get_by_test_id("stMetric").filter(has_text="Transactions")).to_contain_text(f"{dataset.total:,}")
    assert not FULL_ID.search(page.content())
    screenshot(page, ARTIFACTS / "viewer-kiosk.png")


def test_someone_not_on_the_list_sees_no_data(page: Page, auth_app: App, issuer: str) -> None:
    page.goto(auth_app.url)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{issuer}/oauth2/authorize**", timeout=DEADLINE_MS)
    page.get_by_role("button", name=OUTSIDER.sub, exact=True).click()
    expect(page.locator("h1").first).to_have_text("Not allowed", timeout=DEADLINE_MS)
    for path in ("", "customers", "fraud", "live_feed"):
        page.goto(f"{auth_app.url}/{path}")
        expect(page.locator("h1").first).to_have_text("Not allowed", timeout=DEADLINE_MS)
        expect(page.get_by_text("eve@elsewhere.example")).to_be_visible()
        page.wait_for_timeout(300)
        assert page.get_by_test_id("stMetric").count() == 0 and page.get_by_test_id("stDataFrame").count() == 0
        assert "cust_" not in page.content() and "merch_" not in page.content()


def test_signing_out_returns_to_the_sign_in_page(page: Page, auth_app: App, issuer: str) -> None:
    sign_in(page, auth_app, issuer, VIEWER)
    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    # The provider's end-session page (RP-initiated logout), then back to the app.
    page.wait_for_url(f"{issuer}/oauth2/end_session**", timeout=DEADLINE_MS)
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{auth_app.url}/**", timeout=DEADLINE_MS)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=DEADLINE_MS)
    page.goto(f"{auth_app.url}/customers")  # the cookie is gone: every page asks again
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=DEADLINE_MS)
    assert page.get_by_test_id("stMetric").count() == 0 and "cust_" not in page.content()


def test_without_auth_the_app_is_open_as_before(page: Page, open_app: App) -> None:
    page.goto(open_app.url)
    wait_for_data(page, open_app, "Overview")
    expect(page.get_by_test_id("stSidebar")).to_contain_text("No sign-in configured")
    assert page.get_by_role("button", name="Sign in").count() == 0
    csv = top_customers(page, open_app)
    assert FULL_ID.search(csv) and not MASKED_ID.search(csv)
