"""The arrival-rate profile: how many events per minute at any instant. Pure, no Kafka.

The rate is piecewise constant over the 168 hours of a week in Tehran local
time (UTC+03:30; Iran has kept no daylight saving time since 2022), so every
integral is exact: sampling history and drawing Poisson arrivals need no
thinning.

Shape (relative to 1.0 = ordinary daytime off-peak):
- day: a night trough of 0.15 at 03:00-04:59, a morning ramp, the peak
  09:00-17:59 at PEAK_FACTOR (the original generator's peak hours), an active
  evening (1.0 at 18:00-20:59) that tapers off towards midnight;
- week (Iranian week, Saturday first): Saturday-Wednesday 1.0, Thursday 0.8
  (half working day), Friday 0.55 (weekend).
The 168 weights are then scaled so that the mean over a week is exactly
EVENT_RATE, which the original defined as the average events per minute. So
on any one day rate(peak) / rate(18:00) == PEAK_FACTOR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

TEHRAN_OFFSET_S = 3 * 3600 + 1800
HOUR_S = 3600
WEEK_HOURS = 168
PEAK_HOURS = range(9, 18)
#: Relative rate of each local hour outside the peak; peak hours hold a placeholder.
DAY_SHAPE = (0.5, 0.3, 0.2, 0.15, 0.15, 0.2, 0.35, 0.6, 0.85, *([0.0] * 9), 1.0, 1.0, 1.0, 0.9, 0.75, 0.6)
#: Relative rate of each day of the Iranian week: Saturday .. Friday.
WEEK_SHAPE = (1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.55)
# 1970-01-01 (epoch day 0) was a Thursday: index 5 when Saturday is 0.
_EPOCH_WEEKDAY = 5


def hour_of_week(t: float | np.ndarray) -> np.ndarray:
    """Return the Tehran-local hour of the week (0 = Saturday 00:00) of epoch seconds `t`."""
    hours = np.floor((np.asarray(t, dtype=np.float64) + TEHRAN_OFFSET_S) / HOUR_S).astype(np.int64)
    return (hours + _EPOCH_WEEKDAY * 24) % WEEK_HOURS


def weekly_weights(peak_factor: float) -> np.ndarray:
    """Return the 168 hourly weights of a week (mean 1.0), Saturday 00:00 Tehran first."""
    day = np.array(DAY_SHAPE)
    day[list(PEAK_HOURS)] = peak_factor
    weights = np.outer(np.array(WEEK_SHAPE), day).ravel()
    return weights / weights.mean()


@dataclass(frozen=True)
class Profile:
    """The rate profile of one configuration; `rate(t)` is events per minute at epoch seconds t."""

    event_rate: float
    peak_factor: float
    #: Events per second of each hour of the week (read-only), derived from the two above.
    per_second: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        per_second = weekly_weights(self.peak_factor) * (self.event_rate / 60.0)
        per_second.flags.writeable = False
        object.__setattr__(self, "per_second", per_second)  # frozen: derived field set once

    def rate(self, t: float) -> float:
        """Return the expected events per minute at epoch seconds `t`."""
        return float(self.per_second[hour_of_week(t)] * 60.0)

    def rates(self, t: np.ndarray) -> np.ndarray:
        """Vectorised `rate`: events per minute at each epoch second in `t`."""
        return self.per_second[hour_of_week(t)] * 60.0

    def expected_count(self, start: float, end: float) -> float:
        """Return the expected number of events in [start, end) (the integral of the rate)."""
        bounds, idx = _segments(start, end)
        return float(np.sum(self.per_second[idx] * np.diff(bounds)))

    def sample_times(self, n: int, start: float, end: float, rng: np.random.Generator) -> np.ndarray:
        """Return `n` sorted epoch seconds in [start, end) drawn with density proportional to the rate.

        These are the event times of a Poisson process with this profile,
        conditioned on exactly `n` events in the window.
        """
        if n <= 0 or end <= start:
            return np.empty(0, dtype=np.float64)
        bounds, idx = _segments(start, end)
        lengths = np.diff(bounds)
        mass = self.per_second[idx] * lengths
        chosen = rng.choice(len(idx), size=n, p=mass / mass.sum())
        times = bounds[chosen] + rng.random(n) * lengths[chosen]
        times.sort()
        return np.minimum(times, np.nextafter(end, start))

    def next_arrival(self, t: float, exp_draw: float, multiplier: float = 1.0) -> float:
        """Return the next arrival after `t` of the Poisson process with rate `multiplier * rate`.

        `exp_draw` is a standard exponential variate; the cumulative rate is
        inverted exactly across hour boundaries.
        """
        remaining = exp_draw
        per_second = self.per_second
        while True:
            hour = math.floor((t + TEHRAN_OFFSET_S) / HOUR_S)
            seg_end = (hour + 1) * HOUR_S - TEHRAN_OFFSET_S
            lam = float(per_second[(hour + _EPOCH_WEEKDAY * 24) % WEEK_HOURS]) * multiplier
            capacity = lam * (seg_end - t)
            if remaining <= capacity:
                return t + remaining / lam
            remaining -= capacity
            t = float(seg_end)

    def arrivals(self, t: float, n: int, rng: np.random.Generator, multiplier: float = 1.0) -> np.ndarray:
        """Return the next `n` arrival times after `t` (epoch seconds, increasing)."""
        out = np.empty(n, dtype=np.float64)
        for i, draw in enumerate(rng.standard_exponential(n)):
            t = self.next_arrival(t, float(draw), multiplier)
            out[i] = t
        return out


def _segments(start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """Split [start, end) at local hour boundaries: (bounds of len k+1, hour-of-week of each piece)."""
    first = np.floor((start + TEHRAN_OFFSET_S) / HOUR_S) + 1
    last = np.ceil((end + TEHRAN_OFFSET_S) / HOUR_S) - 1
    inner = np.arange(first, last + 1) * HOUR_S - TEHRAN_OFFSET_S
    bounds = np.concatenate(([start], inner[(inner > start) & (inner < end)], [end]))
    return bounds, hour_of_week(bounds[:-1])
