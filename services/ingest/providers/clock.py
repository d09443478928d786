"""Clock-aligned beats for polling: beat k is at `k * interval` seconds since the epoch.

After a poll that started at beat `b` and finished at `now`, the next beat is the first
one at or after `now` (but after `b`): a poll that overran skips the beats it ran over,
and they are reported, never made up late. The schedule is computed from the clock each
time, so it cannot drift, and the sleep until the next beat is never negative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Beat:
    """When to poll next, how long to sleep for it, and how many beats were skipped."""

    at: float
    sleep: float
    skipped: int


def first_beat(now: float, interval: float) -> Beat:
    """The first beat at or after `now`."""
    at = beat_at_or_after(now, interval)
    return Beat(at, max(0.0, at - now), 0)


def next_beat(previous: float, now: float, interval: float) -> Beat:
    """The beat after `previous` given that it is `now` (the previous poll has finished)."""
    index = round(previous / interval) + 1  # beats are whole multiples: no float creep
    skipped = max(0, math.ceil(now / interval - 1e-9) - index)
    at = (index + skipped) * interval
    return Beat(at, max(0.0, at - now), skipped)


def beat_at_or_after(moment: float, interval: float) -> float:
    """The first beat at or after `moment` (e.g. the end of a 429's Retry-After)."""
    return math.ceil(moment / interval - 1e-9) * interval
