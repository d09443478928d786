"""Second ranking stage: merge the partitions' top-N of each window into the global top-N.

There is one `SpecRanking` per window spec. Each partition reports, per watermark advance,
its share of every window it closed and how far it has closed; a window is ranked once every
partition that holds data has closed it. Only the partitions' top-N candidates are ranked
here; the per-symbol rows ride along for the sink.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dataflows.leaders.engine import NO_MORE_WINDOWS_MS, PartitionReport, WindowPart
from dataflows.leaders.panes import Figures
from dataflows.leaders.specs import WindowSpec


@dataclass(frozen=True, slots=True)
class RankedWindow:
    """A whole window across all partitions: the leaders and every symbol's figures."""

    spec: str
    score: str
    length_s: int
    end_ms: int
    partial: bool
    leaders: tuple[tuple[str, float], ...]
    rows: tuple[Figures, ...]
    closed_at_s: float

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.length_s * 1000


def merge_tops(parts: list[WindowPart], n: int) -> tuple[tuple[str, float], ...]:
    """Global top-N from the partitions' top-N lists: highest score, then symbol ascending."""
    candidates = [entry for part in parts for entry in part.top]
    return tuple(sorted(candidates, key=lambda entry: (-entry[1], entry[0]))[:n])


@dataclass
class SpecRanking:
    """Pending windows of one spec and how far each partition has closed them."""

    spec: WindowSpec
    expected_partitions: frozenset[str]
    top_n: int = 3
    progress_ms: dict[str, int] = field(default_factory=dict)
    first_ts_ms: dict[str, int] = field(default_factory=dict)
    pending: dict[int, list[WindowPart]] = field(default_factory=dict)
    emitted: dict[int, list[WindowPart]] = field(default_factory=dict)
    emitted_through_ms: int | None = None

    def add(self, report: PartitionReport) -> list[RankedWindow]:
        """Take one partition's report; return the windows it completes, oldest first."""
        partition = report.partition
        self.progress_ms[partition] = max(
            self.progress_ms.get(partition, report.closed_through_ms), report.closed_through_ms
        )
        if report.first_ts_ms is not None:
            self.first_ts_ms[partition] = report.first_ts_ms
        corrected: list[RankedWindow] = []
        for part in report.parts:
            if part.end_ms in self.emitted:
                # A partition that had no data when the window was ranked: rank it again.
                self.emitted[part.end_ms].append(part)
                corrected.append(self._rank(part.end_ms, self.emitted[part.end_ms]))
            else:
                self.pending.setdefault(part.end_ms, []).append(part)
        return corrected + self._rank_ready()

    def resume_after_end_of_input(self) -> None:
        """A restored ranking: partitions whose input had ended (a bounded run's snapshot) may
        go on with new data in this run, so they are waited for again like any other."""
        self.progress_ms = {
            partition: through_ms for partition, through_ms in self.progress_ms.items()
            if through_ms != NO_MORE_WINDOWS_MS
        }

    def flush(self) -> list[RankedWindow]:
        """End of input: rank every pending window."""
        return self._rank_through(max(self.pending, default=0))

    def _rank_ready(self) -> list[RankedWindow]:
        if not self.progress_ms or not self.expected_partitions <= self.progress_ms.keys():
            return []
        return self._rank_through(min(self.progress_ms.values()))

    def _rank_through(self, through_ms: int) -> list[RankedWindow]:
        ready = sorted(end for end in self.pending if end <= through_ms)
        ranked = []
        for end_ms in ready:
            parts = self.pending.pop(end_ms)
            self.emitted[end_ms] = parts
            ranked.append(self._rank(end_ms, parts))
        if self.emitted_through_ms is None or through_ms > self.emitted_through_ms:
            self.emitted_through_ms = through_ms
        self._forget_before(self.emitted_through_ms - self.spec.length_ms)
        return ranked

    def _rank(self, end_ms: int, parts: list[WindowPart]) -> RankedWindow:
        first_seen = min(self.first_ts_ms.values(), default=end_ms)
        rows = tuple(sorted((row for part in parts for row in part.rows), key=lambda r: r.symbol))
        return RankedWindow(
            spec=self.spec.name,
            score=self.spec.score.value,
            length_s=self.spec.length_s,
            end_ms=end_ms,
            partial=end_ms - self.spec.length_ms < first_seen,
            leaders=merge_tops(parts, self.top_n),
            rows=rows,
            closed_at_s=max(part.closed_at_s for part in parts),
        )

    def _forget_before(self, end_ms: int) -> None:
        for old in [end for end in self.emitted if end < end_ms]:
            del self.emitted[old]
