"""When live figures are stale, and when they are only quiet. Pure: the one definition of the rule.

Stale means the figures may be wrong now: the feed cannot reach the broker
(down, or still connecting), it is behind (its lag at STALE_LAG
messages or more), or its loop stalled (no poll for more than `stale_seconds`). A
connected, caught-up feed whose last transaction is old is merely quiet (a
quiet topic at night): its figures are live, there is just nothing new.

Read by the feed's `Health` (`dashboard.feed.status`) and by the pages
(`dashboard.views.health`); the wall screen relies on the same verdict.
"""

from __future__ import annotations

from typing import Literal

#: Messages behind the high watermarks from which the feed is stale.
STALE_LAG = 1_000

Verdict = Literal["live", "quiet", "waiting", "connecting", "down", "stalled", "behind"]
STALE_VERDICTS: frozenset[str] = frozenset({"connecting", "down", "stalled", "behind"})


def verdict(
    state: str | None,
    total_lag: int | None,
    poll_age: float | None,
    last_message_age: float | None,
    stale_seconds: float,
) -> Verdict:
    """Return how fresh the feed is.

    `state`: "connected", "connecting" or "down" (None: unknown, read as
    connected); `total_lag`: messages behind (None: not known yet);
    `poll_age`: seconds since the feed's loop last polled (None: unknown);
    `last_message_age`: seconds since the last transaction arrived (None:
    none yet). An age equal to `stale_seconds` is not stale yet; a lag
    equal to STALE_LAG is.
    """
    if state == "down":
        return "down"
    if state == "connecting":
        return "connecting"
    if poll_age is not None and poll_age > stale_seconds:
        return "stalled"
    if total_lag is not None and total_lag >= STALE_LAG:
        return "behind"
    if last_message_age is None:
        return "waiting"
    return "quiet" if last_message_age > stale_seconds else "live"


def is_stale(v: Verdict) -> bool:
    """True when figures under this verdict may be wrong now (not merely quiet)."""
    return v in STALE_VERDICTS
