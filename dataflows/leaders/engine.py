"""One topic partition's windows: panes per symbol, the partition's watermark, window closing.

The partition is the unit of state because it is the unit of order: every tick of a symbol
is in one partition (the message key is the symbol), in the order the broker stores it, so
lateness and first/last decisions are the same whatever the number of workers.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from dataflows.leaders.fold import fold_partition
from dataflows.leaders.fold_ahead import OlderPanes, fold_with_older, prepare_older
from dataflows.leaders.panes import Figures, SymbolPanes
from dataflows.leaders.specs import PANE_MS, WindowSpec
from stockstream.slots import fast_getstate
from stockstream.ticks import Tick

NO_MORE_WINDOWS_MS = 2**62
"""Progress reported by a partition whose input has ended: it closes no further window."""

EMPTY_PARTITION_MS = -1
"""Progress reported (tail mode, each idle tick) by a partition without a tick yet: the
heartbeat the ranking needs to stop waiting for it (dataflows/leaders/ranking.py)."""


@fast_getstate
@dataclass(frozen=True, slots=True)
class WindowPart:
    """One partition's share of one window: its symbols' figures and its own top-N."""

    spec: str
    end_ms: int
    partition: str
    rows: tuple[Figures, ...]
    top: tuple[tuple[str, float], ...]
    closed_at_s: float


@dataclass(frozen=True, slots=True)
class PartitionReport:
    """What a partition says to the ranking of one spec each time its watermark advances."""

    spec: str
    partition: str
    closed_through_ms: int
    first_ts_ms: int | None
    parts: tuple[WindowPart, ...]


def top_n(rows: tuple[Figures, ...], score: str, n: int) -> tuple[tuple[str, float], ...]:
    """The `n` best rows: highest score first, ties broken by symbol ascending.

    Only the rows scoring at least the n-th highest score can be among them (every tie
    included), so only those are sorted: at 10,000 symbols a sort of every row by a Python
    key cost about 10 ms a window."""
    if n <= 0 or not rows:
        return ()
    score_of = attrgetter(score)
    threshold = heapq.nlargest(n, map(score_of, rows))[-1]
    candidates = [row for row in rows if score_of(row) >= threshold]
    ranked = sorted(candidates, key=lambda row: (-score_of(row), row.symbol))[:n]
    return tuple((row.symbol, score_of(row)) for row in ranked)


@dataclass
class PartitionEngine:
    """Panes, watermark and closing state of one partition. Pure: wall time is passed in."""

    partition: str
    specs: tuple[WindowSpec, ...]
    lateness_ms: int
    top_n: int = 3
    max_ts_ms: int | None = None
    first_ts_ms: int | None = None
    watermark_ms: int | None = None
    closed_through_ms: int | None = None
    panes: dict[str, SymbolPanes] = field(default_factory=dict)
    last_closed_ms: int | None = None  # the newest window end closed, of any spec
    prepared: OlderPanes | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        """Snapshots leave out the prepared fold: a cache, rebuilt or not needed."""
        return {name: value for name, value in self.__dict__.items() if name != "prepared"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.prepared = None

    @property
    def horizon_panes(self) -> int:
        return max(spec.length_panes for spec in self.specs)

    def ingest(self, tick: Tick) -> bool:
        """Fold a tick into its pane; False (and nothing changes) when it is late."""
        ts_ms = tick.ts_ms
        if self.watermark_ms is not None and ts_ms < self.watermark_ms:
            return False
        if self.max_ts_ms is None or ts_ms > self.max_ts_ms:
            self.max_ts_ms = ts_ms
            self._raise_watermark(ts_ms - self.lateness_ms)
        if self.first_ts_ms is None or ts_ms < self.first_ts_ms:
            self.first_ts_ms = ts_ms
        symbol_panes = self.panes.get(tick.symbol)
        if symbol_panes is None:
            symbol_panes = self.panes[tick.symbol] = SymbolPanes(self.horizon_panes + 1)
        symbol_panes.add(tick.price, tick.size, ts_ms)
        return True

    def advance_idle(self, idle_ms: int) -> None:
        """Push the watermark by wall time the input has been idle, so quiet windows close."""
        if self.max_ts_ms is not None and idle_ms > 0:
            self._raise_watermark(self.max_ts_ms - self.lateness_ms + idle_ms)

    def empty_reports(self) -> list[PartitionReport]:
        """The heartbeat of a partition that has no tick yet (none once it has one)."""
        return [] if self.max_ts_ms is not None else self._reports({}, EMPTY_PARTITION_MS)

    def _raise_watermark(self, candidate_ms: int) -> None:
        if self.watermark_ms is None or candidate_ms > self.watermark_ms:
            self.watermark_ms = candidate_ms

    def next_close_ms(self) -> int | None:
        """The watermark at which `close_ready` closes the next window end (where
        `_close_until` starts); None before the first tick."""
        if self.closed_through_ms is not None:
            return self.closed_through_ms + PANE_MS
        if self.first_ts_ms is not None:
            return (self.first_ts_ms // PANE_MS + 1) * PANE_MS
        return None

    def prepare_ahead(self) -> bool:
        """Fold the next window end's panes but its last one now, while the partition waits
        for that pane to end (`fold.OlderPanes`): once the watermark is half a pane past the
        previous end, not yet at the next one. The close then adds one pane per symbol;
        without a preparation (the first end, ends closed together, a restart) it folds every
        pane. True if it prepared."""
        next_close_ms = self.next_close_ms()
        if (
            self.closed_through_ms is None
            or next_close_ms is None
            or self.watermark_ms is None
            or not next_close_ms - PANE_MS // 2 <= self.watermark_ms < next_close_ms
            or (self.prepared is not None and self.prepared.end_ms == next_close_ms)
        ):
            return False
        self.prepared = prepare_older(
            self.panes,
            next_close_ms,
            [spec.length_panes for spec in self._closing_specs(next_close_ms)],
        )
        return True

    def _closing_specs(self, end_ms: int) -> list[WindowSpec]:
        """The specs with a window ending at `end_ms`."""
        return [spec for spec in self.specs if spec.closes_at(end_ms)]

    def close_ready(self, now_s: float) -> list[PartitionReport]:
        """Close every window whose end the watermark has passed."""
        if self.watermark_ms is None:
            return []
        return self._close_until((self.watermark_ms // PANE_MS) * PANE_MS, now_s)

    def close_all(self, now_s: float) -> list[PartitionReport]:
        """End of input: close every window that holds a tick, then report no more windows.

        The engine itself stays resumable (Bytewax snapshots it at the end of input, and a
        later run may continue with new data): it records the last end it closed, and its
        watermark moves there, so a tick of a window already emitted is late, not lost."""
        reports = self._close_until(NO_MORE_WINDOWS_MS, now_s)
        if not reports:
            reports = self._reports({}, NO_MORE_WINDOWS_MS)
        self.closed_through_ms = self.last_closed_ms
        if self.last_closed_ms is not None:
            self._raise_watermark(self.last_closed_ms)
        return reports

    def _close_until(self, ready_ms: int, now_s: float) -> list[PartitionReport]:
        if self.closed_through_ms is not None and ready_ms <= self.closed_through_ms:
            return []
        closed: dict[str, list[WindowPart]] = {spec.name: [] for spec in self.specs}
        end_ms = PANE_MS if self.closed_through_ms is None else self.closed_through_ms + PANE_MS
        while True:
            oldest = self._trim(end_ms // PANE_MS - self.horizon_panes)
            if oldest is None:
                break
            end_ms = max(end_ms, (oldest + 1) * PANE_MS)
            if end_ms > ready_ms:
                break
            for part in self._close_end(end_ms, now_s):
                closed[part.spec].append(part)
            self.last_closed_ms = end_ms
            end_ms += PANE_MS
        self.closed_through_ms = ready_ms
        return self._reports(closed, ready_ms)

    def _reports(
        self, closed: dict[str, list[WindowPart]], through_ms: int
    ) -> list[PartitionReport]:
        return [
            PartitionReport(
                spec.name,
                self.partition,
                through_ms,
                self.first_ts_ms,
                tuple(closed.get(spec.name, ())),
            )
            for spec in self.specs
        ]

    def _close_end(self, end_ms: int, now_s: float) -> list[WindowPart]:
        specs = self._closing_specs(end_ms)
        lengths = [spec.length_panes for spec in specs]
        prepared, self.prepared = self.prepared, None
        if prepared is not None and prepared.end_ms == end_ms:
            rows = fold_with_older(self.panes, prepared, lengths)
        else:
            rows = fold_partition(self.panes, end_ms, lengths)
        parts = []
        for spec in specs:
            spec_rows = tuple(rows[spec.length_panes])
            if spec_rows:
                top = top_n(spec_rows, spec.score, self.top_n)
                parts.append(WindowPart(spec.name, end_ms, self.partition, spec_rows, top, now_s))
        return parts

    def _trim(self, keep_from_index: int) -> int | None:
        """Drop panes before `keep_from_index` and symbols left without panes; the oldest left."""
        oldest: int | None = None
        emptied = []
        for symbol, symbol_panes in self.panes.items():
            symbol_panes.trim(keep_from_index)
            if not symbol_panes:
                emptied.append(symbol)
                continue
            first = symbol_panes.oldest_index
            if oldest is None or first < oldest:
                oldest = first
        for symbol in emptied:
            del self.panes[symbol]
        return oldest
