"""The far-future guard: a tick whose event time is absurdly ahead must not move its partition's
watermark (which would make every later real tick `late` and freeze the leaderboards).

Rule, per partition, applied to each valid tick in broker order before the windows see it
(`R` = the highest event time the guard has let through in this partition, `now` = wall clock):

1. `ts > now + max_ahead_of_clock` : rejected at once, reason `future` (no feed is ahead of the
   clock: a skewed producer clock, milliseconds read as seconds...).
2. `R` unknown (the partition's first tick), or `ts <= R + max_jump`, or the partition is
   live, `R >= now - live_lag` (its event time follows the clock, so the clock rule alone
   judges it: a live overnight or weekend gap passes at once): let through.
3. Otherwise (a replay of historical data, `R` far behind the clock) the tick jumps ahead of
   the partition's time: it is **held**, not windowed, until the partition's next ticks decide:
   - confirmed when `confirm_ticks` held ticks form one chain (sorted by time, consecutive
     ones at most `max_jump` apart): a real gap, such as the next trading day or the end of a
     lunch break, is followed by a stream of ticks at the new time. `R` moves to the chain's
     newest time and every held tick at most `max_jump` above it is released in arrival order
     (the windows then judge each as usual, `late` included); the others stay held;
   - refuted when `confirm_ticks` ticks are let through at the old time while ticks are held
     (the session goes on: the jump was one bad tick or a few): every held tick is rejected
     with reason `future`;
   - at the end of a bounded input, ticks still held are rejected (`future`, "unconfirmed");
   - at most `max_held` ticks are held; beyond that the oldest is rejected.

Held ticks live in the guard, and the guard in the source partition's snapshot next to the
Kafka offset (which is already past them), so nothing is lost on a restart and the decisions
depend only on the partition's order (the clock rules matter only for ticks near the present).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from dataflows.leaders.inputs import DeadLetter, RawMessage, Received, letter_for
from dataflows.leaders.kafka_reader import as_raw
from stockstream.metrics import WINDOWS_NOT_LATEST_FUTURE
from stockstream.ticks import Reason, Tick, format_ts

log = logging.getLogger(__name__)

Released = list[tuple[Received, Tick]]  # ticks let through, in the order to window them


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Bounds of the guard, in milliseconds (see the module doc for the rule)."""

    max_ahead_of_clock_ms: int = 300_000
    max_jump_ms: int = 3_600_000
    live_lag_ms: int = 4 * 86_400_000
    confirm_ticks: int = 10
    max_held: int = 1_000


@dataclass(slots=True)
class FutureGuard:
    """One partition's guard state: the reference time, held ticks and votes against them."""

    partition: str
    config: GuardConfig = field(default_factory=GuardConfig)
    reference_ms: int | None = None
    held: list[tuple[RawMessage, Tick]] = field(default_factory=list)
    refuting: int = 0

    def admit(
        self,
        message: Received,
        tick: Tick,
        now_ms: int,
        passed: Released,
        rejected: list[DeadLetter],
    ) -> None:
        """Judge one tick: append it to `passed` (maybe with held ticks it confirms), hold it,
        or append its dead letter (and those of held ticks it refutes) to `rejected`."""
        ts_ms = tick.ts_ms
        config = self.config
        if ts_ms > now_ms + config.max_ahead_of_clock_ms:
            rejected.append(
                self._letter(
                    message,
                    tick,
                    f"{config.max_ahead_of_clock_ms // 1000} s ahead of the clock "
                    f"{format_ts(now_ms)}",
                )
            )
            return
        reference = self.reference_ms
        if (
            reference is None
            or ts_ms <= reference + config.max_jump_ms
            or reference >= now_ms - config.live_lag_ms
        ):
            if reference is None or ts_ms > reference:
                self.reference_ms = ts_ms
            passed.append((message, tick))
            if self.held:
                self._vote_against(rejected)
            return
        self.held.append((as_raw(message), tick))  # held across batches and snapshots
        if len(self.held) > config.max_held:
            old_message, old_tick = self.held.pop(0)
            rejected.append(self._letter(old_message, old_tick, "held too long (buffer full)"))
        self._maybe_confirm(ts_ms, passed)

    def end_of_input(self, rejected: list[DeadLetter]) -> None:
        """A bounded input ended: ticks still held were never confirmed."""
        for message, tick in self.held:
            rejected.append(self._letter(message, tick, "unconfirmed at the end of the input"))
        self.held.clear()
        self.refuting = 0

    def _vote_against(self, rejected: list[DeadLetter]) -> None:
        self.refuting += 1
        if self.refuting < self.config.confirm_ticks:
            return
        detail = (
            f"not confirmed: {self.refuting} ticks at the partition's time "
            f"{format_ts(self.reference_ms or 0)} followed"
        )
        for message, tick in self.held:
            rejected.append(self._letter(message, tick, detail))
        self.held.clear()
        self.refuting = 0

    def _maybe_confirm(self, ts_ms: int, passed: Released) -> None:
        times = sorted(tick.ts_ms for _, tick in self.held)
        if len(times) < self.config.confirm_ticks:
            return
        gap_ms = self.config.max_jump_ms
        # The chain of held times (consecutive ones at most max_jump apart) holding ts_ms.
        at = times.index(ts_ms)
        low = at
        while low > 0 and times[low] - times[low - 1] <= gap_ms:
            low -= 1
        high = at
        while high + 1 < len(times) and times[high + 1] - times[high] <= gap_ms:
            high += 1
        if high - low + 1 < self.config.confirm_ticks:
            return
        self.reference_ms = times[high]
        limit_ms = times[high] + gap_ms
        keep = []
        for message, tick in self.held:
            if tick.ts_ms <= limit_ms:
                passed.append((message, tick))
            else:
                keep.append((message, tick))
        self.held = keep
        self.refuting = 0

    def _letter(self, message: Received, tick: Tick, why: str) -> DeadLetter:
        reference = "none" if self.reference_ms is None else format_ts(self.reference_ms)
        detail = (
            f"event time {format_ts(tick.ts_ms)} too far ahead ({why}); partition "
            f"{self.partition} is at {reference}"
        )
        return letter_for(message, Reason.FUTURE, detail)


class _Window(Protocol):
    @property
    def spec(self) -> str: ...
    @property
    def end_ms(self) -> int: ...


def refuse_future_window(window: _Window) -> None:
    """The sink's half of the guard: the Lua script kept a window ending too far ahead of the
    clock out of the latest keys (its history keys were written); count and log it."""
    WINDOWS_NOT_LATEST_FUTURE.labels(window.spec).inc()
    log.error(
        "window too far ahead of the clock: not made the latest",
        extra={"window": window.spec, "end_iso": format_ts(window.end_ms)},
    )
