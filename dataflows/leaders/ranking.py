"""Second ranking stage: merge the partitions' top-N of each window into the global top-N.

There is one `SpecRanking` per window spec. Each partition reports, per watermark advance,
its share of every window it closed and how far it has closed (`PartitionReport`).

When a window is final (the rule, as in Flink's idle-source handling):

- The ranking waits for EVERY partition of the topic (`expected_partitions`, all of them, not
  only those holding data at start-up): until a partition has been heard from, nothing is
  ranked. A partition is heard from by a report of its progress, by the end of a bounded
  input (`NO_MORE_WINDOWS_MS`) or, in tail mode, by the heartbeat of a partition without any
  tick yet (`EMPTY_PARTITION_MS`, sent every idle tick).
- A window is ranked once every partition holding data has closed it (the minimum of their
  progress has passed its end) and no partition without data may still hold some of it.
- A partition without data (empty, e.g. a topic the producers have not written to yet) holds
  a window back for `idle_grace_s` of wall time, counted from the moment the partitions with
  data had all closed it: only a heartbeat received that long after that moment, still saying
  "empty", lets the window go. So an empty partition never blocks forever, yet a partition
  whose first ticks arrive shortly after the others' (the normal first deployment: the
  dataflow starts on an empty topic, then the producers start) is never overtaken: its first
  report makes it a partition with data, waited for from then on, for good. A partition that
  stays empty delays each window by `idle_grace_s`, the delay `IDLE_TIMEOUT_S` also gives a
  partition with data that falls silent (`PartitionEngine.advance_idle`).
- Last resort: a partition whose first ticks arrive after the grace has let a window go
  reports parts of windows already ranked. A window ending less than one window length before
  the newest one ranked is ranked again with every part (`corrected`) and written again, history
  included (the Redis sink rewrites a window's history keys). Parts of older windows, whose
  other parts are forgotten, cannot be merged: they are not ranked alone (that would replace a
  whole window by one partition's share) but returned in `too_late` for the caller to count
  and log (`stockstream_window_parts_too_late_total`). The rows of ranked windows are kept for
  this only while a correction can come: once every partition has data and has closed a
  window, it is settled and its rows are dropped (`_settled_through_ms`).

Only the partitions' top-N candidates are ranked here; the per-symbol rows ride along for the
sink. Pure: wall time is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from dataflows.leaders.engine import (
    EMPTY_PARTITION_MS,
    NO_MORE_WINDOWS_MS,
    PartitionReport,
    WindowPart,
)
from dataflows.leaders.panes import Figures
from dataflows.leaders.specs import WindowSpec

BEFORE_ANY_WINDOW_MS = -NO_MORE_WINDOWS_MS
"""Earlier than any window end: nothing is forgotten or settled before it."""


@dataclass(frozen=True, slots=True)
class RankedWindow:
    """A whole window across all partitions: the leaders and every symbol's figures.
    `corrected`: a window ranked before, ranked again with a late partition's share."""

    spec: str
    score: str
    length_s: int
    end_ms: int
    partial: bool
    leaders: tuple[tuple[str, float], ...]
    rows: tuple[Figures, ...]
    closed_at_s: float
    corrected: bool = False

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.length_s * 1000


_by_symbol = attrgetter("symbol")


def merge_tops(parts: list[WindowPart], n: int) -> tuple[tuple[str, float], ...]:
    """Global top-N from the partitions' top-N lists: highest score, then symbol ascending."""
    candidates = [entry for part in parts for entry in part.top]
    return tuple(sorted(candidates, key=lambda entry: (-entry[1], entry[0]))[:n])


@dataclass
class SpecRanking:
    """Pending windows of one spec, how far each partition has closed them, and which
    partitions are still empty (the rule is in the module docstring)."""

    spec: WindowSpec
    expected_partitions: frozenset[str]
    top_n: int = 3
    idle_grace_s: float = 30.0
    progress_ms: dict[str, int] = field(default_factory=dict)  # partitions with data
    empty_heard_s: dict[str, float] = field(default_factory=dict)  # last "empty" heartbeat
    first_ts_ms: dict[str, int] = field(default_factory=dict)
    pending: dict[int, list[WindowPart]] = field(default_factory=dict)
    held_since_s: dict[int, float] = field(default_factory=dict)  # waiting for empty ones
    emitted: dict[int, list[WindowPart]] = field(default_factory=dict)
    newest_emitted_ms: int | None = None  # windows a length older are forgotten
    too_late: list[WindowPart] = field(default_factory=list)  # drained by the caller

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Snapshots taken before the empty-partition rule lack its fields: defaults."""
        defaults = SpecRanking(state["spec"], state["expected_partitions"]).__dict__
        self.__dict__.update({**defaults, **state})

    def add(self, report: PartitionReport, now_s: float = 0.0) -> list[RankedWindow]:
        """Take one partition's report at wall time `now_s` (it matters only while some
        partition is empty); return the windows it completes or corrects, oldest first."""
        partition = report.partition
        if report.closed_through_ms == EMPTY_PARTITION_MS:
            if partition not in self.progress_ms:  # a partition with data stays one
                self.empty_heard_s[partition] = now_s
            return self._rank_ready(now_s)
        settled_ms = self._settled_through_ms()  # before this report's progress counts
        self.empty_heard_s.pop(partition, None)
        self.progress_ms[partition] = max(
            self.progress_ms.get(partition, report.closed_through_ms), report.closed_through_ms
        )
        if report.first_ts_ms is not None:
            self.first_ts_ms[partition] = report.first_ts_ms
        corrected: list[RankedWindow] = []
        for part in report.parts:
            if part.end_ms in self.emitted:
                self.emitted[part.end_ms].append(part)
                corrected.append(self._rank(part.end_ms, self.emitted[part.end_ms], True))
            elif part.end_ms < self._forgotten_before_ms() or part.end_ms <= settled_ms:
                self.too_late.append(part)  # settled: cannot happen, but never ranked alone
            else:
                self.pending.setdefault(part.end_ms, []).append(part)
        return corrected + self._rank_ready(now_s)

    def resume_after_end_of_input(self) -> None:
        """A restored ranking: partitions whose input had ended (a bounded run's snapshot) may
        go on with new data in this run, so they are waited for again like any other; and the
        heartbeats of partitions that were empty in the last run say nothing about this one."""
        self.empty_heard_s = {}
        self.progress_ms = {
            partition: through_ms
            for partition, through_ms in self.progress_ms.items()
            if through_ms != NO_MORE_WINDOWS_MS
        }

    def flush(self) -> list[RankedWindow]:
        """End of input: rank every pending window."""
        return self._emit(sorted(self.pending))

    def _forgotten_before_ms(self) -> int:
        if self.newest_emitted_ms is None:
            return BEFORE_ANY_WINDOW_MS
        return self.newest_emitted_ms - self.spec.length_ms

    def _rank_ready(self, now_s: float) -> list[RankedWindow]:
        heard = self.progress_ms.keys() | self.empty_heard_s.keys()
        if not self.progress_ms or not self.expected_partitions <= heard:
            return []
        through_ms = min(self.progress_ms.values())
        closed = sorted(end for end in self.pending if end <= through_ms)
        if not self.empty_heard_s:
            return self._emit(closed)
        # Empty partitions: a window goes once each has said "empty" idle_grace_s after the
        # partitions with data all closed it. Oldest first, so stop at the first held one.
        for end_ms in closed:
            self.held_since_s.setdefault(end_ms, now_s)
        quiet_until_s = min(self.empty_heard_s.values()) - self.idle_grace_s
        ready: list[int] = []
        for end_ms in closed:
            if self.held_since_s[end_ms] > quiet_until_s:
                break
            ready.append(end_ms)
        return self._emit(ready)

    def _emit(self, ends: list[int]) -> list[RankedWindow]:
        """Rank the pending windows `ends` (oldest first); forget those a length older."""
        ranked = []
        for end_ms in ends:
            parts = self.pending.pop(end_ms)
            self.held_since_s.pop(end_ms, None)
            self.emitted[end_ms] = parts
            ranked.append(self._rank(end_ms, parts, False))
        if ends and (self.newest_emitted_ms is None or ends[-1] > self.newest_emitted_ms):
            self.newest_emitted_ms = ends[-1]
        forget_before = max(self._forgotten_before_ms(), self._settled_through_ms() + 1)
        for old in [end for end in self.emitted if end < forget_before]:
            del self.emitted[old]
        return ranked

    def _settled_through_ms(self) -> int:
        """Windows ending at or before this can get no further part: every partition of the
        topic has data and has closed them (a partition's reports only carry windows after
        its progress). Their rows are dropped at once instead of kept a window length for a
        correction that cannot come: the ranking's snapshot, every epoch, then holds no rows
        in the steady state (it held every row of the last window length: 78,000 `Figures`
        at 500 symbols). While a partition is empty or unheard, or its bounded input ended
        (a restart may resume it with more ticks), nothing settles."""
        if not self.expected_partitions <= self.progress_ms.keys():
            return BEFORE_ANY_WINDOW_MS
        if NO_MORE_WINDOWS_MS in self.progress_ms.values():
            return BEFORE_ANY_WINDOW_MS
        return min(self.progress_ms.values())

    def _rank(self, end_ms: int, parts: list[WindowPart], corrected: bool) -> RankedWindow:
        first_seen = min(self.first_ts_ms.values(), default=end_ms)
        rows = tuple(sorted((row for part in parts for row in part.rows), key=_by_symbol))
        return RankedWindow(
            spec=self.spec.name,
            score=self.spec.score.value,
            length_s=self.spec.length_s,
            end_ms=end_ms,
            partial=end_ms - self.spec.length_ms < first_seen,
            leaders=merge_tops(parts, self.top_n),
            rows=rows,
            closed_at_s=max(part.closed_at_s for part in parts),
            corrected=corrected,
        )
