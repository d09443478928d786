"""The leaders dataflow.

    ticks topic ─ per partition: decode, windows ─┬─ (spec, PartitionReport) ─ rank ─ Redis
                                                  └─ DeadLetter (invalid, late) ─ ticks.dlq

Run it with `python -m dataflows.leaders` (settings from the environment, recovery wired in),
or with Bytewax's runner: `python -m bytewax.run dataflows.leaders.flow:flow -i 2`.
"""

from __future__ import annotations

from typing import TypeGuard, TypeVar, cast

from bytewax import operators as op
from bytewax.dataflow import Dataflow
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

from dataflows.leaders.dead_letters import DeadLetterSink, count_rejection
from dataflows.leaders.engine import PartitionReport
from dataflows.leaders.inputs import DeadLetter
from dataflows.leaders.operators import RankingConfig
from dataflows.leaders.redis_sink import RedisLeaderboardSink
from dataflows.leaders.settings import DataflowSettings, StartFrom
from dataflows.leaders.source import EngineConfig, PartitionWindowsSource, SourceItem

V = TypeVar("V")


def is_report(item: SourceItem) -> TypeGuard[PartitionReport]:
    return isinstance(item, PartitionReport)


def key_by_spec(report: PartitionReport) -> tuple[str, PartitionReport]:
    return report.spec, report


def drop_key(keyed: tuple[str, V]) -> V:
    return keyed[1]


def build_flow(settings: DataflowSettings) -> Dataflow:
    """The dataflow for these settings (reads the topic's partitions from the broker)."""
    specs = settings.specs
    from_end = settings.start_from == StartFrom.END
    engine = EngineConfig(
        specs,
        settings.lateness_ms,
        settings.top_n,
        settings.ticks_topic,
        idle_tick_s=None if settings.bounded else settings.idle_tick_s,
        guard=settings.guard,
        idle_timeout_s=settings.idle_timeout_s,
    )
    source = PartitionWindowsSource(
        settings.brokers,
        engine,
        tail=not settings.bounded,
        starting_offset=OFFSET_END if from_end else OFFSET_BEGINNING,
        add_config=settings.kafka_extra_config,
        batch_size=settings.batch_size,
    )
    # Every partition, empty or not: the ranking waits for each (an empty one up to the idle
    # timeout per window, dataflows/leaders/ranking.py), so one that receives its first ticks
    # after the others is not ranked without.
    every_partition = frozenset(part.split("-", 1)[0] for part in source.list_parts())
    ranking = RankingConfig(specs, every_partition, settings.top_n, settings.idle_timeout_s)

    flow = Dataflow("leaders")
    closed = op.input("ticks_in", flow, source)
    # PartitionReport | DeadLetter  (decoded and windowed where each partition is read)
    outcome = op.branch("split_reports", closed, is_report)
    reports = op.map("key_by_spec", outcome.trues, key_by_spec)
    # (spec, PartitionReport)
    ranked = op.stateful_batch("rank", reports, ranking.build_logic)
    # (spec, RankedWindow)
    windows = op.map("drop_spec", ranked, drop_key)
    # RankedWindow
    op.output(
        "leaders_out",
        windows,
        RedisLeaderboardSink(
            settings.redis_url,
            settings.history_ttl_s,
            settings.redis_retry_max_s,
            settings.future_max_ahead_of_clock_s,
        ),
    )
    rejected = cast(op.Stream[DeadLetter], outcome.falses)  # what is not a report
    letters = op.map("count_rejections", rejected, count_rejection)
    # DeadLetter
    op.output(
        "dlq_out",
        letters,
        DeadLetterSink(
            settings.kafka_bootstrap_servers, settings.dlq_topic, settings.kafka_extra_config
        ),
    )
    return flow


def __getattr__(name: str) -> Dataflow:
    """`flow`, built on first access from the environment (for `bytewax.run ...flow:flow`)."""
    if name == "flow":
        return build_flow(DataflowSettings())
    raise AttributeError(name)
