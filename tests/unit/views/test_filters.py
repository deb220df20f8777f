"""Filters and display options: query-parameter round trips, parsing, masks against plain pandas, window edges."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dashboard.store.buffer import RingBuffer
from dashboard.store.decode import RawMessage, to_batch
from dashboard.views.filters import (
    DEFAULT_WINDOW,
    MAX_PAGE_CHARS,
    MAX_ROTATE,
    WINDOWS,
    Display,
    Filters,
    code_lookup,
    get_all,
    normalise,
    playlist,
)
from tests import synthetic as syn

EVENTS = syn.events(4000, seed=3)
SNAPSHOT = syn.buffer_of(EVENTS).snapshot()
REF = syn.reference(EVENTS)


class FakeQueryParams:
    """Behaves like st.query_params for reading: get_all and nothing else."""

    def __init__(self, data: dict[str, list[str]]) -> None:
        self.data = data

    def get_all(self, key: str) -> list[str]:
        return list(self.data.get(key, []))


class MappingWithGetAll(dict[str, str]):
    """Like st.query_params: a mapping whose get() returns the last value, plus get_all."""

    def __init__(self, data: dict[str, list[str]]) -> None:
        super().__init__({k: v[-1] for k, v in data.items()})
        self.data = data

    def get_all(self, key: str) -> list[str]:
        return list(self.data.get(key, []))


ROUND_TRIPS = [
    Filters(),
    Filters(merchants=("merch_7", "merch_12"), window="15m"),
    Filters(merchants=(syn.XSS,), categories=("retail", "government"), methods=("nfc",), statuses=("declined",)),
    Filters(validity="invalid", window="24h"),
    Filters(validity="valid", window="5m", statuses=("approved", "pending")),
]


@pytest.mark.parametrize("filters", ROUND_TRIPS)
def test_filters_round_trip_through_query(filters: Filters) -> None:
    assert Filters.from_query(filters.to_query()) == filters
    as_lists = {k: v if isinstance(v, list) else [v] for k, v in filters.to_query().items()}
    assert Filters.from_query(FakeQueryParams(as_lists)) == filters
    assert Filters.from_query(MappingWithGetAll(as_lists)) == filters


@pytest.mark.parametrize(
    "display",
    [
        Display(2.0),
        Display(5.0, paused=True),
        Display(0.5, kiosk=True),
        Display(30, True, True),
        Display(2.0, kiosk=True, rotate=("overview", "fraud"), every=5.0, alert_seconds=8.0, sound=True),
    ],
)
def test_display_round_trip_through_query(display: Display) -> None:
    assert Display.from_query(display.to_query(2.0), 2.0) == display


def test_defaults_leave_the_url_clean() -> None:
    assert Filters().to_query() == {}
    assert Display(2.0).to_query(2.0) == {}
    assert Filters().window == DEFAULT_WINDOW == "all"


def test_url_of_the_issue_parses() -> None:
    query = FakeQueryParams({"merchant": ["merch_7", "merch_12"], "window": ["15m"]})
    assert Filters.from_query(query) == Filters(merchants=("merch_7", "merch_12"), window="15m")


def test_unknown_values_are_dropped_and_bad_scalars_fall_back() -> None:
    query = {
        "merchant": ["merch_1", "", "merch_1", "x" * 500],
        "category": ["retail", "casino"],
        "method": "bitcoin",
        "status": ["approved", "approved"],
        "validity": "maybe",
        "window": "3d",
    }
    assert Filters.from_query(query) == Filters(merchants=("merch_1",), categories=("retail",), statuses=("approved",))


def test_enum_filters_keep_schema_order_whatever_the_url_order() -> None:
    assert Filters.from_query({"category": ["government", "retail"]}).categories == ("retail", "government")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"refresh": "5"}, Display(5.0)),
        ({"refresh": "0.1"}, Display(0.5)),
        ({"refresh": "9999"}, Display(300.0)),
        ({"refresh": "nan"}, Display(2.0)),
        ({"refresh": "soon"}, Display(2.0)),
        ({"paused": "1", "kiosk": "true"}, Display(2.0, paused=True, kiosk=True)),
        ({"paused": "0", "kiosk": "no"}, Display(2.0)),
    ],
)
def test_display_parsing(query: dict[str, str], expected: Display) -> None:
    assert Display.from_query(query, 2.0) == expected


def test_paused_display_has_no_refresh_period() -> None:
    assert Display(3.0).run_every == 3.0
    assert Display(3.0, paused=True).run_every is None


def test_get_all_reads_mappings_and_query_objects() -> None:
    assert get_all({"a": "1"}, "a") == ["1"]
    assert get_all({"a": ["1", "2"]}, "a") == ["1", "2"]
    assert get_all({}, "a") == []
    assert get_all(FakeQueryParams({"a": ["x"]}), "a") == ["x"]


def test_normalise_ignores_foreign_keys_and_shapes() -> None:
    assert normalise({"merchant": "m", "embed": "true"}) == normalise(FakeQueryParams({"merchant": ["m"]}))


def reference_mask(filters: Filters, now_ms: int) -> np.ndarray:
    """The same selection computed on plain strings with pandas."""
    keep = np.ones(len(REF), dtype=bool)
    if filters.window_ms is not None:
        keep &= (REF["kafka_ts_ms"] >= now_ms - filters.window_ms).to_numpy()
    for column, wanted in (
        ("merchant_id", filters.merchants),
        ("merchant_category", filters.categories),
        ("payment_method", filters.methods),
        ("status", filters.statuses),
    ):
        if wanted:
            keep &= REF[column].isin(wanted).to_numpy()
    if filters.validity != "all":
        keep &= (REF["valid"] == (filters.validity == "valid")).to_numpy()
    return keep


@pytest.mark.parametrize(
    "filters",
    [
        *ROUND_TRIPS,
        Filters(merchants=("merch_3", "no_such_merchant")),
        Filters(categories=("food_service",), methods=("online", "mobile"), validity="valid", window="1h"),
        Filters(merchants=("no_such_merchant",)),
    ],
)
def test_mask_matches_plain_pandas(filters: Filters) -> None:
    mask = filters.mask(SNAPSHOT, syn.NOW_MS)
    expected = reference_mask(filters, syn.NOW_MS)
    assert mask.dtype == bool
    assert np.array_equal(mask, expected)
    if filters.merchants == ("no_such_merchant",):
        assert not mask.any()


def test_every_filter_narrows_something() -> None:
    """Guard against a fixture where the mask comparison could not fail."""
    everything = Filters().mask(SNAPSHOT, syn.NOW_MS)
    assert everything.all()
    for filters in ROUND_TRIPS[1:]:
        assert 0 < filters.mask(SNAPSHOT, syn.NOW_MS).sum() < len(SNAPSHOT) or filters.merchants == (syn.XSS,)


@pytest.mark.parametrize("window", [w for w, length in WINDOWS.items() if length is not None])
def test_window_edges_are_inclusive_at_the_start(window: str) -> None:
    now = syn.NOW_MS
    length = WINDOWS[window]
    assert length is not None
    stamps = [now - length - 1, now - length, now - length + 1, now, now + 500]
    buffer = RingBuffer(10)
    buffer.append(to_batch([RawMessage(b"{}", ts) for ts in stamps]))
    mask = Filters(window=window).mask(buffer.snapshot(), now)
    assert mask.tolist() == [False, True, True, True, True]


def test_window_all_keeps_rows_without_a_kafka_timestamp() -> None:
    buffer = RingBuffer(10)
    buffer.append(to_batch([RawMessage(b"{}", -1), RawMessage(b"{}", 5)]))
    assert Filters().mask(buffer.snapshot(), syn.NOW_MS).tolist() == [True, True]
    assert Filters(window="24h").mask(buffer.snapshot(), syn.NOW_MS).tolist() == [False, False]


def test_code_lookup_marks_only_wanted_codes() -> None:
    table = code_lookup(("", "a", "b", "c"), ["c", "a", "zz"])
    assert table.tolist() == [False, True, False, True]


# --- the wall's options: playlist, page time, alert time, sound ------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"rotate": "overview,fraud,volume,health"}, ("overview", "fraud", "volume", "health")),
        ({"rotate": " Overview , ,FRAUD,/health/"}, ("overview", "fraud", "health")),
        ({"rotate": ["overview,fraud", "health"]}, ("overview", "fraud", "health")),
        ({"rotate": ""}, ()),
        ({"rotate": ",,,"}, ()),
        ({"rotate": "x" * 100}, ("x" * MAX_PAGE_CHARS,)),
        ({"rotate": ",".join(["fraud"] * 50)}, ("fraud",) * MAX_ROTATE),
    ],
)
def test_rotate_parsing(query: dict[str, str | list[str]], expected: tuple[str, ...]) -> None:
    assert Display.from_query(query, 2.0).rotate == expected


@pytest.mark.parametrize(
    ("text", "every"),
    [(None, 30.0), ("10", 10.0), ("5", 5.0), ("4.9", 5.0), ("0", 5.0), ("-3", 5.0), ("1e9", 3600.0), ("nan", 30.0),
     ("inf", 30.0), ("soon", 30.0), (" 12 ", 12.0)],
)  # fmt: skip
def test_every_defaults_to_30_and_is_at_least_5(text: str | None, every: float) -> None:
    query = {} if text is None else {"every": text}
    assert Display.from_query(query, 2.0).every == every


@pytest.mark.parametrize(
    ("text", "seconds"), [(None, 60.0), ("8", 8.0), ("0.2", 1.0), ("99999", 3600.0), ("", 60.0), ("x", 60.0)]
)
def test_alert_seconds_defaults_to_60(text: str | None, seconds: float) -> None:
    query = {} if text is None else {"alert_seconds": text}
    assert Display.from_query(query, 2.0).alert_seconds == seconds


def test_sound_is_off_by_default() -> None:
    assert Display.from_query({}, 2.0).sound is False
    assert Display.from_query({"sound": "1"}, 2.0).sound is True
    assert Display.from_query({"sound": "0"}, 2.0).sound is False
    assert Display(2.0, sound=True).to_query(2.0) == {"sound": "1"}
    assert Display(2.0, every=30.0, alert_seconds=60.0).to_query(2.0) == {}


def test_display_parsing_never_raises() -> None:
    """Random text (and lists of it) in every wall key: parsing never raises and stays in bounds."""
    rng = random.Random(13)
    alphabet = "0123456789.,-+eE nNaIiFf/_xX<>&\"'\x00\u200f\U0001f600"
    keys = ["rotate", "every", "alert_seconds", "sound", "refresh", "kiosk", "paused"]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))

    for _ in range(3000):
        query: dict[str, str | list[str]] = {
            k: [text() for _ in range(rng.randint(0, 3))] if rng.random() < 0.3 else text()
            for k in rng.sample(keys, rng.randint(0, len(keys)))
        }
        display = Display.from_query(query, 2.0)
        assert 5.0 <= display.every <= 3600.0 and 1.0 <= display.alert_seconds <= 3600.0
        assert len(display.rotate) <= MAX_ROTATE and all(0 < len(n) <= MAX_PAGE_CHARS for n in display.rotate)
        assert Display.from_query(display.to_query(2.0), 2.0) == display
        playlist(display.rotate, PAGES).problem(PAGES)


PAGES = ("overview", "live_feed", "validation", "health", "merchants", "fraud", "commissions", "customers", "volume")


def test_playlist_keeps_known_pages_in_order_and_names_the_unknown() -> None:
    got = playlist(("volume", "nope", "fraud", "<b>x</b>", "nope"), PAGES)
    assert got.pages == ("volume", "fraud")
    assert got.unknown == ("nope", "<b>x</b>")
    line = got.problem(PAGES)
    assert line is not None and "\n" not in line
    assert line.startswith("Playlist: no page named 'nope', '?b?x??b?', rotating through volume, fraud.")
    assert "<" not in line and line.endswith("Pages: " + ", ".join(PAGES) + ".")
    assert playlist(("overview",), PAGES).problem(PAGES) is None
    assert playlist(("bad",), PAGES).problem(PAGES) == (
        "Playlist: no page named 'bad', staying on this page. Pages: " + ", ".join(PAGES) + "."
    )


def test_playlist_cycles_in_order() -> None:
    got = playlist(("overview", "fraud", "volume", "health"), PAGES)
    assert [got.next_after(p) for p in ("overview", "fraud", "volume", "health")] == [
        "fraud",
        "volume",
        "health",
        "overview",
    ]
    assert got.next_after("merchants") == "overview"  # a page outside the list: to the list's start
    assert playlist((), PAGES).next_after("overview") is None
    assert playlist(("fraud",), PAGES).next_after("fraud") == "fraud"
