"""When to publish each tick: as fast as possible, or at a speed factor of event time.

`speed` is event-time seconds per wall-clock second: 0 publishes as fast as possible, 1 in
real time, 60 replays a minute of the session per second. The first tick anchors the
schedule on a monotonic clock; each later tick is due at
`anchor + (ts - first_ts) / speed`, so pacing does not drift when publishing is slow (a
late tick leaves at once and the schedule catches up). Sleeps are never negative.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from stockstream.ticks import Tick

Clock = Callable[[], float]
Sleep = Callable[[float], object]


def due_in(anchor_clock: float, anchor_ts_ms: int, ts_ms: int, speed: float, now: float) -> float:
    """Seconds until a tick at `ts_ms` is due (never negative; 0 when `speed` is 0)."""
    if speed <= 0:
        return 0.0
    due = anchor_clock + (ts_ms - anchor_ts_ms) / 1000.0 / speed
    return max(0.0, due - now)


class Pacer:
    """Sleeps before each tick so ticks leave at `speed` times their event-time spacing.

    `clock` must be monotonic; `sleep` may return early (e.g. `threading.Event.wait` on
    shutdown), pacing simply resumes from the clock on the next tick.
    """

    def __init__(
        self, speed: float, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, not {speed}")
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._anchor: tuple[float, int] | None = None

    def wait(self, ts_ms: int) -> float:
        """Sleep until the tick at `ts_ms` is due; returns the seconds slept for."""
        if self.speed == 0:
            return 0.0
        now = self._clock()
        if self._anchor is None:
            self._anchor = (now, ts_ms)
            return 0.0
        delay = due_in(*self._anchor, ts_ms, self.speed, now)
        if delay > 0:
            self._sleep(delay)
        return delay


def shift(tick: Tick, offset_ms: int) -> Tick:
    """The tick moved `offset_ms` later in event time."""
    return tick if offset_ms == 0 else replace(tick, ts_ms=tick.ts_ms + offset_ms)


def loop_period_ms(first_ms: int, last_ms: int) -> int:
    """How far each loop is shifted: the file's span plus 1 ms, so every tick of a loop is
    strictly later than every tick of the loop before."""
    return last_ms - first_ms + 1


def looped(read: Callable[[], Iterable[Tick]], loop: bool) -> Iterator[Tick]:
    """The ticks of `read()`; with `loop`, again and again, each pass shifted by the file's
    span so event time keeps increasing. Stops when a pass yields nothing."""
    offset = 0
    while True:
        earliest: int | None = None
        latest: int | None = None
        for tick in read():
            earliest = tick.ts_ms if earliest is None else min(earliest, tick.ts_ms)
            latest = tick.ts_ms if latest is None else max(latest, tick.ts_ms)
            yield shift(tick, offset)
        if not loop or earliest is None or latest is None:
            return
        offset += loop_period_ms(earliest, latest)
