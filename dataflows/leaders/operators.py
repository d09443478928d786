"""Bytewax stateful logic around the pure global ranking: snapshots and lazy construction."""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from dataclasses import dataclass

from bytewax.operators import StatefulBatchLogic

from dataflows.leaders.engine import PartitionReport
from dataflows.leaders.ranking import RankedWindow, SpecRanking
from dataflows.leaders.specs import WindowSpec


class RankingLogic(StatefulBatchLogic[PartitionReport, RankedWindow, bytes]):
    """The global ranking of one spec's windows."""

    def __init__(self, ranking: SpecRanking | None, config: RankingConfig) -> None:
        self.ranking = ranking
        self.config = config

    def on_batch(self, values: list[PartitionReport]) -> tuple[Iterable[RankedWindow], bool]:
        if self.ranking is None:
            self.ranking = self.config.new_ranking(values[0].spec)
        out: list[RankedWindow] = []
        for report in values:
            out.extend(self.ranking.add(report))
        return out, self.RETAIN

    def on_eof(self) -> tuple[Iterable[RankedWindow], bool]:
        return ([] if self.ranking is None else self.ranking.flush()), self.RETAIN

    def snapshot(self) -> bytes:
        return pickle.dumps(self.ranking, protocol=pickle.HIGHEST_PROTOCOL)


@dataclass(frozen=True)
class RankingConfig:
    """What a spec's ranking is built from: the partitions that held data at start-up are
    waited for before any window is ranked."""

    specs: tuple[WindowSpec, ...]
    expected_partitions: frozenset[str]
    top_n: int

    def new_ranking(self, spec_name: str) -> SpecRanking:
        spec = next(spec for spec in self.specs if spec.name == spec_name)
        return SpecRanking(spec, self.expected_partitions, self.top_n)

    def build_logic(self, resume: bytes | None) -> RankingLogic:
        """The `stateful_batch` builder: a fresh logic or one restored from its snapshot."""
        ranking: SpecRanking | None = None
        if resume is not None:
            ranking = pickle.loads(resume)  # noqa: S301 - our own snapshot
            if ranking is not None:
                ranking.expected_partitions |= self.expected_partitions
                ranking.resume_after_end_of_input()
        return RankingLogic(ranking, self)
