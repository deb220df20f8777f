"""Who may look, page by page with AppTest: sign-in wall, "not allowed", masked data for viewers, the Health rows.

AppTest seeds `st.user` and the [auth] secrets (the real sign-in flow is
tested in tests/e2e/test_auth_browser.py against a real OIDC provider). Every
element's serialised protobuf, tables and chart data included, is searched
for full customer ids and precise coordinates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.core.schema import FRAUD_AMOUNT, FRAUD_GEO, FRAUD_VELOCITY
from dashboard.store.alert_log import AlertLog
from dashboard.ui import source as live
from tests import synthetic as syn
from tests.apptest.test_fraud_page import EVENTS, alert_of

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
PAGES = sorted(f"app_pages/{p.name}" for p in (ROOT / "app_pages").glob("[!_]*.py"))
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "apptest-cookie-secret-0123456789abcdef",
    "client_id": "darooghe",
    "client_secret": "apptest-client-secret",
    "server_metadata_url": "http://localhost:9/.well-known/openid-configuration",
}
ANALYST = {"is_logged_in": True, "email": "Ana@Corp.ir", "name": "Ana Analyst", "email_verified": True}
VIEWER = {"is_logged_in": True, "email": "wall@corp.ir", "name": "Wall Screen"}
OUTSIDER = {"is_logged_in": True, "email": "eve@evil.example", "name": "Eve"}
FULL_ID = re.compile(rb"cust_\d")
#: The synthetic locations are 35.72 +- 0.05 and 51.33 +- 0.05 with many decimals.
PRECISE = re.compile(rb"(?:35|51)\.\d{3,}")


@pytest.fixture(autouse=True)
def lists(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHBOARD_ALLOWED", "@corp.ir")
    monkeypatch.setenv("DASHBOARD_ANALYSTS", "ana@corp.ir")
    yield
    live.install(None)


def alerts() -> AlertLog:
    log = AlertLog()
    log.extend([alert_of(FRAUD_VELOCITY, EVENTS[0:6]), alert_of(FRAUD_GEO, EVENTS[20:22])])
    log.extend([alert_of(FRAUD_AMOUNT, EVENTS[30:31])])
    return log


def run(user: dict[str, Any] | None, page: str | None = None, secrets: bool = True) -> AppTest:
    live.install(live.StaticSource(syn.buffer_of(EVENTS), syn.health()), lambda: syn.NOW_MS / 1000, alerts())
    at = AppTest.from_file(str(APP), default_timeout=30)
    if secrets:
        at.secrets["auth"] = AUTH
    if user is not None:
        at.user = user
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wire(at: AppTest) -> bytes:
    """Every element of the page as the bytes the browser would get (tables and chart data included)."""
    out: list[bytes] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None and not getattr(node, "children", None):
            out.append(proto.SerializeToString())
        children = getattr(node, "children", None) or {}
        for child in children.values() if isinstance(children, dict) else children:
            walk(child)

    walk(at._tree)
    return b"\n".join(out)


def tables(at: AppTest) -> list[pd.DataFrame]:
    """Every table and chart data set on the page, decoded from the Arrow bytes sent to the browser."""
    out: list[pd.DataFrame] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            name = proto.DESCRIPTOR.name
            payloads = [proto.arrow_data.data] if name == "Dataframe" else []
            payloads += [d.data.data for d in proto.datasets] if name == "VegaLiteChart" else []
            out.extend(pa.ipc.open_stream(b).read_all().to_pandas() for b in payloads if b)
        children = getattr(node, "children", None) or {}
        for child in children.values() if isinstance(children, dict) else children:
            walk(child)

    walk(at._tree)
    return out


def places(at: AppTest) -> np.ndarray:
    """Every lat and lng value of a transaction in the page's tables and chart data (the map's cities aside)."""
    frames = [f for f in tables(at) if "city" not in f.columns]
    values = [f[c].to_numpy(dtype=float) for f in frames for c in f.columns if str(c) in ("lat", "lng")]
    return np.concatenate(values) if values else np.empty(0)


def precise(values: np.ndarray) -> bool:
    """True when some coordinate has more than one decimal (float32 noise allowed)."""
    finite = values[np.isfinite(values)]
    return bool((np.abs(finite - np.round(finite, 1)) > 1e-4).any())


def texts(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.title, *at.markdown, *at.caption, *at.error, *at.button])


def test_not_signed_in_sees_the_sign_in_page_and_no_data() -> None:
    at = run({"is_logged_in": False})
    assert [t.value for t in at.title] == ["Darooghe Live"]
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.metric and not at.dataframe and not FULL_ID.search(wire(at))


def test_someone_not_on_the_list_is_not_allowed_and_sees_no_data() -> None:
    at = run(OUTSIDER, page="app_pages/customers.py")
    assert [t.value for t in at.title] == ["Not allowed"]
    assert "eve@evil.example" in texts(at) and "Sign out" in [b.label for b in at.button]
    assert not at.metric and not at.dataframe and not re.search(rb"cust_", wire(at))


@pytest.mark.parametrize("page", PAGES)
def test_a_viewer_sees_no_full_customer_id_or_precise_place_on_any_page(page: str) -> None:
    at = run(VIEWER, page=page)
    assert "Wall Screen" in texts(at) and "masked" in texts(at)
    data = wire(at)
    assert not FULL_ID.search(data), FULL_ID.search(data)
    assert not PRECISE.search(data), PRECISE.search(data)  # raw messages (text)
    assert not precise(places(at))  # tables and the map (Arrow)


def test_the_viewers_pages_do_show_pseudonyms_and_the_analysts_the_ids() -> None:
    for page in ("app_pages/customers.py", "app_pages/fraud.py"):
        assert "cust_…".encode() in wire(run(VIEWER, page=page))
        assert FULL_ID.search(wire(run(ANALYST, page=page)))  # the test above can fail
    assert precise(places(run(ANALYST, page="app_pages/fraud.py")))  # the map and the one-customer table
    assert len(places(run(VIEWER, page="app_pages/fraud.py"))) > 0  # the viewer's are there, only rounded
    assert PRECISE.search(wire(run(ANALYST)))  # the latest message on the Overview
    assert "analyst" in texts(run(ANALYST))


def test_the_viewers_one_customer_view_finds_the_pseudonymised_customer() -> None:
    at = run(VIEWER, page="app_pages/fraud.py")
    chosen = at.selectbox(key="fraud_customer")
    assert str(chosen.value).startswith("cust_…")
    assert len(at.dataframe[-1].value) > 0  # their buffered transactions, looked up by pseudonym


def test_without_auth_the_app_is_open_and_says_so() -> None:
    at = run(None, secrets=False, page="app_pages/customers.py")
    assert "No sign-in configured" in texts(at)
    assert FULL_ID.search(wire(at))  # everybody is an analyst, as before sign-in existed


def test_health_says_who_is_signed_in_and_never_a_secret() -> None:
    at = run(VIEWER, page="app_pages/health.py")
    table = at.dataframe[-1].value
    assert dict(zip(table["item"], table["value"], strict=True)) == {
        "Sign-in": "configured (OpenID Connect, Streamlit's st.login)",
        "Signed in as": "Wall Screen (wall@corp.ir)",
        "Sees": "customer data masked (viewer)",
    }
    data = wire(at)
    assert AUTH["client_secret"].encode() not in data and AUTH["cookie_secret"].encode() not in data
    open_table = run(None, secrets=False, page="app_pages/health.py").dataframe[-1].value
    assert open_table["value"].tolist()[0].startswith("not configured")


def test_an_incomplete_auth_section_is_one_readable_line() -> None:
    live.install(live.StaticSource(syn.buffer_of(EVENTS), syn.health()), lambda: syn.NOW_MS / 1000)
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["auth"] = {k: v for k, v in AUTH.items() if k not in ("client_secret", "cookie_secret")}
    at.user = VIEWER
    at.run()
    assert not at.exception
    assert [c.value for c in at.code] == ["the [auth] section of the secrets lacks cookie_secret, client_secret"]
    assert not at.dataframe


def test_a_bad_allow_list_is_one_readable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHBOARD_ALLOWED", "@corp.ir, wall")
    at = run(VIEWER)
    assert [c.value for c in at.code] == [
        "DASHBOARD_ALLOWED: 'wall' is neither an email (ana@example.com) nor a domain (@example.com)"
    ]
    assert not at.dataframe


def test_a_wall_banner_shows_the_customer_as_the_person_may_see_it() -> None:
    """A new alert's banner on a kiosk page: a pseudonym for a viewer, the id for an analyst; never replayed."""
    customer = EVENTS[0].record["customer_id"]
    for user, shown in ((VIEWER, "pseudonym"), (ANALYST, customer)):
        log = AlertLog()
        live.install(live.StaticSource(syn.buffer_of(EVENTS), syn.health()), lambda: syn.NOW_MS / 1000, log)
        at = AppTest.from_file(str(APP), default_timeout=30)
        at.secrets["auth"] = AUTH
        at.user = user
        at.query_params["kiosk"] = "1"
        at.run()
        assert not at.code  # the screen opened: nothing new yet
        log.extend([alert_of(FRAUD_VELOCITY, EVENTS[0:6])])  # raised at the installed clock's now
        at.run()
        banner = [c.value for c in at.code]
        assert len(banner) == 1 and any("Velocity · 6 transactions" in m.value for m in at.markdown), banner
        if shown == "pseudonym":
            assert banner[0].startswith("cust_…") and not FULL_ID.search(wire(at)), banner
        else:
            assert banner == [customer]
        again = AppTest.from_file(str(APP), default_timeout=30)  # a reload: a new session
        again.secrets["auth"] = AUTH
        again.user = user
        again.query_params["kiosk"] = "1"
        again.run()
        assert not again.code and not again.exception
