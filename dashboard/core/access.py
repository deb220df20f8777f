"""Who may look: the allow-lists of DASHBOARD_ALLOWED and DASHBOARD_ANALYSTS, and the decision for one person.

Pure: stdlib only. A list is emails (`ana@example.com`) and whole domains
(`@example.com`), separated by commas or whitespace. Matching ignores case;
`@example.com` matches `ana@example.com` but not `ana@eu.example.com` (a
subdomain is another domain: list it too) nor `ana@badexample.com`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# A deliberately plain e-mail and domain shape: the identity provider has checked
# the address; this only catches typos in a setting.
_DOMAIN = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+"
_EMAIL_RE = re.compile(rf"[^\s@,]+@{_DOMAIN}")
_DOMAIN_RE = re.compile(rf"@{_DOMAIN}")


def parse_people(text: str) -> tuple[str, ...]:
    """Return the entries of an allow-list setting, lower-cased, in order, without repeats.

    Raises ValueError naming the first entry that is neither an email nor an
    `@domain`. Empty text is an empty list.
    """
    out: list[str] = []
    for raw in re.split(r"[\s,;]+", text.strip()):
        if not raw:
            continue
        entry = raw.lower()
        if not (_EMAIL_RE.fullmatch(entry) or _DOMAIN_RE.fullmatch(entry)):
            raise ValueError(f"{raw!r} is neither an email (ana@example.com) nor a domain (@example.com)")
        if entry not in out:
            out.append(entry)
    return tuple(out)


def matches(entries: Iterable[str], email: str | None) -> bool:
    """True when `email` is listed in `entries` (from `parse_people`) by itself or by its domain."""
    if not email:
        return False
    address = email.strip().lower()
    if not _EMAIL_RE.fullmatch(address):
        return False
    domain = address[address.rindex("@") :]
    return any(entry in (address, domain) for entry in entries)


@dataclass(frozen=True)
class Access:
    """What one person may see. `configured`: sign-in is on (an [auth] section exists).

    `allowed`: may see the dashboard at all; `analyst`: sees customer ids,
    coordinates and raw messages in full (everyone else sees them masked).
    Without sign-in everybody is an allowed analyst: the app is open, as it
    was before sign-in existed.
    """

    configured: bool
    signed_in: bool
    email: str | None = None
    name: str | None = None
    allowed: bool = False
    analyst: bool = False
    reason: str = ""


def decide(
    *,
    configured: bool,
    signed_in: bool,
    email: str | None,
    name: str | None,
    email_verified: object,
    allowed: Iterable[str],
    analysts: Iterable[str],
) -> Access:
    """Decide what a person may see from their identity claims and the two lists.

    Without sign-in configured: everybody is an analyst. Signed in: allowed
    when the email is on `allowed` (an empty list allows nobody) and the
    provider did not say the email is unverified (`email_verified` false);
    an analyst when also on `analysts`.
    """
    if not configured:
        return Access(False, False, allowed=True, analyst=True, reason="no sign-in configured")
    if not signed_in:
        return Access(True, False, reason="not signed in")
    person = Access(True, True, email, name)
    allowed = tuple(allowed)
    if not email:
        return _refuse(person, "the identity provider sent no email address")
    if email_verified is False or (isinstance(email_verified, str) and email_verified.lower() == "false"):
        return _refuse(person, "the identity provider has not verified this email address")
    if not allowed:
        return _refuse(person, "DASHBOARD_ALLOWED is empty, so nobody may look")
    if not matches(allowed, email):
        return _refuse(person, "this email address is not on DASHBOARD_ALLOWED")
    analyst = matches(analysts, email)
    return Access(True, True, email, name, allowed=True, analyst=analyst, reason="analyst" if analyst else "viewer")


def _refuse(person: Access, reason: str) -> Access:
    return Access(person.configured, person.signed_in, person.email, person.name, reason=reason)
