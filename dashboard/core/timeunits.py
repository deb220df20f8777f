"""Time units in milliseconds and minutes: one definition for every module that bins or windows by time."""

from __future__ import annotations

from typing import Final

SECOND_MS: Final = 1_000
MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
HOUR_MINUTES: Final = 60
DAY_MINUTES: Final = 1_440
