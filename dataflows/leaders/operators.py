"""Bytewax stateful logic around the pure engine and ranking: wall time, snapshots, metrics."""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from bytewax.operators import StatefulBatchLogic

from dataflows.leaders.engine import PartitionEngine, PartitionReport
from dataflows.leaders.inputs import Arrival, DeadLetter, partition_key
from dataflows.leaders.ranking import RankedWindow, SpecRanking
from dataflows.leaders.specs import WindowSpec
from stockstream.metrics import WATERMARK_LAG, WINDOWS_CLOSED
from stockstream.ticks import Reason, format_ts

EngineOutput = PartitionReport | DeadLetter


class EngineLogic(StatefulBatchLogic[Arrival, EngineOutput, bytes]):
    """One partition's engine. While its input is idle (and the input is unbounded) the
    watermark follows system time, so quiet windows still close."""

    def __init__(self, engine: PartitionEngine | None, config: EngineConfig) -> None:
        self._engine = engine
        self.config = config
        self.last_arrival = time.monotonic()

    @property
    def engine(self) -> PartitionEngine:
        assert self._engine is not None, "engine used before its first tick"
        return self._engine

    def on_batch(self, values: list[Arrival]) -> tuple[Iterable[EngineOutput], bool]:
        self.last_arrival = time.monotonic()
        if self._engine is None:
            self._engine = self.config.new_engine(partition_key(values[0].partition))
        engine = self._engine
        out: list[EngineOutput] = []
        for arrival in values:
            if not engine.ingest(arrival.tick):
                out.append(self._late(arrival))
        out.extend(self._close(engine.close_ready(time.time())))
        return out, self.RETAIN

    def on_notify(self) -> tuple[Iterable[EngineOutput], bool]:
        if self._engine is None:
            return [], self.RETAIN
        idle_ms = int((time.monotonic() - self.last_arrival) * 1000)
        self.engine.advance_idle(idle_ms)
        return self._close(self.engine.close_ready(time.time())), self.RETAIN

    def on_eof(self) -> tuple[Iterable[EngineOutput], bool]:
        if self._engine is None:
            return [], self.RETAIN
        return self._close(self.engine.close_all(time.time())), self.RETAIN

    def notify_at(self) -> datetime | None:
        if self.config.idle_tick_s is None:
            return None
        return datetime.now(UTC) + timedelta(seconds=self.config.idle_tick_s)

    def snapshot(self) -> bytes:
        return pickle.dumps(self._engine, protocol=pickle.HIGHEST_PROTOCOL)

    def _late(self, arrival: Arrival) -> DeadLetter:
        watermark = self.engine.watermark_ms or 0
        return DeadLetter(
            Reason.LATE,
            f"late: event time {format_ts(arrival.tick.ts_ms)} is before the watermark "
            f"{format_ts(watermark)} of partition {self.engine.partition}",
            arrival.key, arrival.value, self.config.topic, arrival.partition, arrival.offset,
        )

    def _close(self, reports: list[PartitionReport]) -> list[EngineOutput]:
        if self.engine.watermark_ms is not None:
            WATERMARK_LAG.labels(self.engine.partition).set(
                time.time() - self.engine.watermark_ms / 1000
            )
        for report in reports:
            if report.parts:
                WINDOWS_CLOSED.labels(report.spec).inc(len(report.parts))
        return list(reports)


@dataclass(frozen=True)
class EngineConfig:
    """What a partition engine is built from; `idle_tick_s` None disables the idle advance."""

    specs: tuple[WindowSpec, ...]
    lateness_ms: int
    top_n: int
    topic: str
    idle_tick_s: float | None

    def new_engine(self, partition: str) -> PartitionEngine:
        return PartitionEngine(partition, self.specs, self.lateness_ms, self.top_n)

    def build_logic(self, resume: bytes | None) -> EngineLogic:
        """The `stateful_batch` builder: a fresh logic or one restored from its snapshot."""
        engine = None if resume is None else pickle.loads(resume)  # noqa: S301 - own snapshot
        return EngineLogic(engine, self)


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
        return RankingLogic(ranking, self)
