"""Who may look: sign-in with Streamlit's own st.login, the allow-lists, and masked data for viewers.

`gate(settings)` runs first in every run (from `shell.draw`), before any data
is read. When Streamlit's secrets have an `[auth]` section, a visitor who is
not signed in sees only the sign-in page, and a signed-in person not on
DASHBOARD_ALLOWED only "not allowed"; both stop there. Streamlit (Authlib
underneath) does the whole OpenID Connect protocol; this module only reads
`st.user`. Without `[auth]` the app is open and everybody is an analyst, as
before sign-in existed.

`guard(source, access)` is what pages read: the source itself for analysts,
a masking view of it (`dashboard.views.privacy.MaskedSource`) for everyone
else; `alerts(frame, access)` does the same for fraud alerts. The masking key
is drawn once per server process and never leaves it.

Nothing here shows a secret: errors name the file and the missing keys only.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import threading
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.core.access import Access, decide
from dashboard.core.settings import Settings
from dashboard.ui import source as live
from dashboard.views import privacy

logger = logging.getLogger(__name__)

#: The keys of Streamlit's `[auth]` section for its default provider (see README "Who may look").
AUTH_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")


class SignInConfigError(ValueError):
    """The secrets file or its [auth] section cannot be used; str() is one line without secret values."""


def _secrets_files() -> list[str]:
    return list(st.get_option("secrets.files") or [])


def configured() -> bool:
    """True when Streamlit's secrets have an [auth] section; raise SignInConfigError when they cannot be read.

    A secrets file Streamlit cannot parse would silently leave the app open,
    so every file that exists is parsed here first (fail closed).
    """
    for name in _secrets_files():
        path = Path(name)
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SignInConfigError(f"the secrets file {name} cannot be read ({type(exc).__name__})") from None
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            where = re.search(r"\(at line \d+, column \d+\)", str(exc))  # the position, never the text
            raise SignInConfigError(
                f"the secrets file {name} is not valid TOML {where.group(0) if where else ''}".rstrip()
            ) from None
    if not st.secrets.load_if_toml_exists() or "auth" not in st.secrets:
        return False
    section = st.secrets["auth"]
    missing = [k for k in AUTH_KEYS if not (isinstance(section.get(k), str) and section.get(k).strip())]
    if missing:
        raise SignInConfigError(f"the [auth] section of the secrets lacks {', '.join(missing)}")
    return True


def _user() -> tuple[bool, dict[str, Any]]:
    """(signed in, the identity claims Streamlit keeps in its auth cookie)."""
    claims = dict(st.user)
    return bool(claims.get("is_logged_in")), claims


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def access(settings: Settings) -> Access:
    """Decide what this session's person may see (raises SignInConfigError on unusable sign-in settings)."""
    if not configured():
        return decide(
            configured=False,
            signed_in=False,
            email=None,
            name=None,
            email_verified=None,
            allowed=(),
            analysts=(),
        )
    signed_in, claims = _user()
    return decide(
        configured=True,
        signed_in=signed_in,
        email=_text(claims.get("email")),
        name=_text(claims.get("name")) or _text(claims.get("preferred_username")),
        email_verified=claims.get("email_verified"),
        allowed=settings.allowed,
        analysts=settings.analysts,
    )


def gate(settings: Settings) -> Access:
    """Let an allowed person through (their name and sign-out in the sidebar) or stop the run.

    Stops with the sign-in page (not signed in), "not allowed", or one line
    naming an unusable sign-in setting. Never reads any data.
    """
    try:
        person = access(settings)
    except SignInConfigError as exc:
        st.error("The dashboard cannot start: sign-in is configured, but not usably.")
        st.code(str(exc), language=None, wrap_lines=True)
        st.stop()
    if not person.configured:
        st.sidebar.caption("No sign-in configured: everyone who can reach this page sees everything.")
        return person
    if not person.signed_in:
        st.title("Darooghe Live")
        st.write("Sign in with your company account to see the dashboard.")
        st.button("Sign in", type="primary", on_click=st.login, key="auth_sign_in")
        st.stop()
    if not person.allowed:
        st.title("Not allowed")
        st.error("You are signed in, but this account may not see the dashboard. Ask its owner to add you.")
        st.caption(f"Signed in as {person.email or 'an account without an email address'}: {person.reason}.")
        st.button("Sign out", on_click=st.logout, key="auth_sign_out")
        logger.info("refused %s: %s", person.email, person.reason)
        st.stop()
    with st.sidebar:
        who = person.name or person.email or "?"
        role = "analyst: customer data in full" if person.analyst else "viewer: customer data masked"
        st.caption(f"Signed in as **{_plain(who)}** ({_plain(person.email or '')}) · {role}")
        st.button("Sign out", on_click=st.logout, key="auth_sign_out", width="stretch")
    return person


def _plain(text: str) -> str:
    """Claims are the provider's data: escape markdown so a name renders as the text it is."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$])", r"\\\1", text)


@functools.cache
def _key() -> bytes:
    """The masking key of this server process (drawn on first use, never shown or stored)."""
    return secrets.token_bytes(32)


_lock = threading.Lock()
_masked: list[tuple[live.Source, privacy.MaskedSource]] = []  # the latest source and its masking view


def guard(source: live.Source, person: Access) -> live.Source:
    """Return what `person`'s pages read: `source` for an analyst, its masking view for anyone else."""
    if person.analyst:
        return source
    with _lock:
        if not _masked or _masked[0][0] is not source:
            _masked[:] = [(source, privacy.MaskedSource(source, _key(), lambda: live.now_ms() / 1000))]
        return _masked[0][1]


def customer(customer_id: str, person: Access) -> str:
    """Return one customer id as `person` may see it (its pseudonym for non-analysts), as the wall's banners show it."""
    return customer_id if person.analyst else privacy.pseudonym(customer_id, _key())


def alerts(frame: pd.DataFrame, person: Access) -> pd.DataFrame:
    """Return the fraud-alert frame as `person` may see it (customer ids masked for non-analysts)."""
    return frame if person.analyst else privacy.mask_alerts(frame, _key())


def status_table(person: Access) -> pd.DataFrame:
    """Rows (item, value) for the Health page: whether sign-in is on, who is signed in, what they see."""
    if not person.configured:
        rows = [("Sign-in", "not configured: the app is open and shows customer data in full")]
    else:
        rows = [
            ("Sign-in", "configured (OpenID Connect, Streamlit's st.login)"),
            ("Signed in as", f"{person.name or '—'} ({person.email or 'no email'})"),
            ("Sees", "customer data in full (analyst)" if person.analyst else "customer data masked (viewer)"),
        ]
    return pd.DataFrame(rows, columns=["item", "value"])
