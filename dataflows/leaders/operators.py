"""Bytewax stateful logic around the pure global ranking: wall time, metrics, snapshots and
lazy construction."""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Iterable
from dataclasses import dataclass

from bytewax.operators import StatefulBatchLogic

from dataflows.leaders.engine import PartitionReport
from dataflows.leaders.ranking import RankedWindow, SpecRanking
from dataflows.leaders.specs import WindowSpec
from stockstream.metrics import WINDOW_PARTS_TOO_LATE, WINDOWS_CORRECTED
from stockstream.ticks import format_ts

log = logging.getLogger(__name__)


class RankingLogic(StatefulBatchLogic[PartitionReport, RankedWindow, bytes]):
    """The global ranking of one spec's windows."""

    def __init__(self, ranking: SpecRanking | None, config: RankingConfig) -> None:
        self.ranking = ranking
        self.config = config

    def on_batch(self, values: list[PartitionReport]) -> tuple[Iterable[RankedWindow], bool]:
        if self.ranking is None:
            self.ranking = self.config.new_ranking(values[0].spec)
        out: list[RankedWindow] = []
        now_s = time.time()
        for report in values:
            out.extend(self.ranking.add(report, now_s))
        return observe(self.ranking, out), self.RETAIN

    def on_eof(self) -> tuple[Iterable[RankedWindow], bool]:
        if self.ranking is None:
            return [], self.RETAIN
        return observe(self.ranking, self.ranking.flush()), self.RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.ranking, protocol=pickle.HIGHEST_PROTOCOL)


def observe(ranking: SpecRanking, windows: list[RankedWindow]) -> list[RankedWindow]:
    """Count and log the last resorts of the ranking (corrections, parts too late to merge)."""
    for window in windows:
        if window.corrected:
            WINDOWS_CORRECTED.labels(window.spec).inc()
            log.warning(
                "window %s ending %s ranked again: a partition that was empty when it "
                "was ranked has ticks in it",
                window.spec,
                format_ts(window.end_ms),
            )
    for part in ranking.too_late:
        WINDOW_PARTS_TOO_LATE.labels(part.spec).inc()
        log.error(
            "partition %s's share of window %s ending %s (%d symbols) is not written: the "
            "window was ranked too long ago to merge it",
            part.partition,
            part.spec,
            format_ts(part.end_ms),
            len(part.rows),
        )
    ranking.too_late.clear()
    return windows


@dataclass(frozen=True)
class RankingConfig:
    """What a spec's ranking is built from: every partition of the topic is waited for, an
    empty one for at most `idle_grace_s` per window (dataflows/leaders/ranking.py)."""

    specs: tuple[WindowSpec, ...]
    expected_partitions: frozenset[str]
    top_n: int
    idle_grace_s: float

    def new_ranking(self, spec_name: str) -> SpecRanking:
        spec = next(spec for spec in self.specs if spec.name == spec_name)
        return SpecRanking(spec, self.expected_partitions, self.top_n, self.idle_grace_s)

    def build_logic(self, resume: bytes | None) -> RankingLogic:
        """The `stateful_batch` builder: a fresh logic or one restored from its snapshot."""
        ranking: SpecRanking | None = None
        if resume is not None:
            ranking = pickle.loads(resume)  # noqa: S301 - our own snapshot
            if ranking is not None:
                ranking.expected_partitions |= self.expected_partitions
                ranking.idle_grace_s = self.idle_grace_s  # settings may have changed
                ranking.resume_after_end_of_input()
        return RankingLogic(ranking, self)
