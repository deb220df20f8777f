"""Who may look: parsing of DASHBOARD_ALLOWED / DASHBOARD_ANALYSTS, matching, and the decision for one person."""

from __future__ import annotations

import pytest

from dashboard.core.access import Access, decide, matches, parse_people
from dashboard.core.settings import Settings, SettingsError, settings_table


def test_parse_lowercases_splits_on_commas_and_whitespace_and_drops_repeats() -> None:
    text = " Ana@Example.com, @Corp.IR\n bob@x.io;ana@example.com ,, "
    assert parse_people(text) == ("ana@example.com", "@corp.ir", "bob@x.io")


@pytest.mark.parametrize("text", ["", "   ", ",", " ;\n"])
def test_empty_list(text: str) -> None:
    assert parse_people(text) == ()


@pytest.mark.parametrize("bad", ["ana", "ana@", "@", "@corp", "ana@@corp.ir", "ana@corp..ir", "@-corp.ir", "*"])
def test_parse_names_the_bad_entry(bad: str) -> None:
    with pytest.raises(ValueError, match=repr(bad).replace("*", r"\*")):
        parse_people(f"ok@corp.ir, {bad}")


def test_matching_ignores_case_and_takes_exact_domains_only() -> None:
    entries = parse_people("@corp.ir, Bob@Other.org")
    assert matches(entries, "ANA@CORP.IR")
    assert matches(entries, "bob@other.org")
    assert not matches(entries, "ana@eu.corp.ir")  # a subdomain is another domain
    assert not matches(entries, "ana@badcorp.ir")
    assert not matches(entries, "ana@corp.ir.evil.com")
    assert not matches(entries, "carol@other.org")
    assert not matches(entries, "corp.ir")  # not an email at all
    assert not matches(entries, "")
    assert not matches(entries, None)
    assert not matches((), "ana@corp.ir")


def test_a_listed_subdomain_matches_only_itself() -> None:
    entries = parse_people("@eu.corp.ir")
    assert matches(entries, "ana@eu.corp.ir")
    assert not matches(entries, "ana@corp.ir")


def _decide(email: str | None, verified: object = None, **lists: str) -> Access:
    return decide(
        configured=True,
        signed_in=True,
        email=email,
        name="N",
        email_verified=verified,
        allowed=parse_people(lists.get("allowed", "@corp.ir")),
        analysts=parse_people(lists.get("analysts", "ana@corp.ir")),
    )


def test_without_sign_in_everybody_is_an_analyst() -> None:
    person = decide(
        configured=False, signed_in=False, email=None, name=None, email_verified=None, allowed=(), analysts=()
    )
    assert person.allowed and person.analyst and not person.configured


def test_configured_but_not_signed_in_sees_nothing() -> None:
    person = decide(
        configured=True,
        signed_in=False,
        email=None,
        name=None,
        email_verified=None,
        allowed=("@corp.ir",),
        analysts=(),
    )
    assert not person.allowed and not person.analyst


def test_roles() -> None:
    analyst, viewer, outsider = _decide("Ana@Corp.ir"), _decide("vic@corp.ir"), _decide("eve@evil.com")
    assert (analyst.allowed, analyst.analyst) == (True, True)
    assert (viewer.allowed, viewer.analyst) == (True, False)
    assert (outsider.allowed, outsider.analyst) == (False, False)


def test_an_analyst_must_be_allowed_too() -> None:
    person = _decide("ana@elsewhere.org", analysts="ana@elsewhere.org")
    assert not person.allowed and not person.analyst


def test_empty_allow_list_allows_nobody() -> None:
    person = _decide("ana@corp.ir", allowed="")
    assert not person.allowed and "empty" in person.reason


@pytest.mark.parametrize("verified", [False, "false", "False"])
def test_an_unverified_email_is_refused(verified: object) -> None:
    assert not _decide("ana@corp.ir", verified).allowed


@pytest.mark.parametrize("verified", [True, "true", None])
def test_a_verified_or_unstated_email_passes(verified: object) -> None:
    assert _decide("vic@corp.ir", verified).allowed


def test_no_email_claim_is_refused() -> None:
    assert not _decide(None).allowed


def test_settings_read_both_lists_and_a_bad_entry_is_one_line() -> None:
    s = Settings.from_env({"DASHBOARD_ALLOWED": "@Corp.ir vic@x.io", "DASHBOARD_ANALYSTS": "ana@corp.ir"})
    assert s.allowed == ("@corp.ir", "vic@x.io") and s.analysts == ("ana@corp.ir",)
    assert Settings().allowed == () and Settings().analysts == ()
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"DASHBOARD_ANALYSTS": "ana@corp.ir, bob"})
    text = str(err.value)
    assert "\n" not in text and text.startswith("DASHBOARD_ANALYSTS:") and "'bob'" in text
    rows = {row[0]: row for row in settings_table()}
    assert rows["DASHBOARD_ALLOWED"][1] == "" and rows["DASHBOARD_ANALYSTS"][1] == ""
