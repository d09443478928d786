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
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition

from dataflows.leaders.dead_letters import DeadLetterSink, count_rejection
from dataflows.leaders.engine import PartitionReport
from dataflows.leaders.inputs import DeadLetter
from dataflows.leaders.operators import RankingConfig
from dataflows.leaders.redis_sink import RedisLeaderboardSink
from dataflows.leaders.settings import DataflowSettings, StartFrom
from dataflows.leaders.source import EngineConfig, PartitionWindowsSource, SourceItem

V = TypeVar("V")


def partitions_with_data(settings: DataflowSettings) -> frozenset[str]:
    """Partitions of the ticks topic holding messages now: the ranking waits for each of them."""
    consumer = Consumer({
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "group.id": "stockstream-leaders-metadata",
        "enable.auto.commit": False,
        **settings.kafka_extra_config,
    })
    try:
        topic = consumer.list_topics(settings.ticks_topic, timeout=30).topics[settings.ticks_topic]
        if topic.error is not None:
            raise RuntimeError(f"topic {settings.ticks_topic!r}: {topic.error.str()}")
        found = set()
        for index in topic.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(settings.ticks_topic, index), timeout=30
            )
            if high > low:
                found.add(str(index))
        return frozenset(found)
    finally:
        consumer.close()


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
    expected = frozenset() if from_end else partitions_with_data(settings)
    engine = EngineConfig(specs, settings.lateness_ms, settings.top_n, settings.ticks_topic,
                          idle_tick_s=None if settings.bounded else settings.idle_tick_s,
                          guard=settings.guard, idle_timeout_s=settings.idle_timeout_s)
    ranking = RankingConfig(specs, expected, settings.top_n)

    flow = Dataflow("leaders")
    source = PartitionWindowsSource(
        settings.brokers, engine, tail=not settings.bounded,
        starting_offset=OFFSET_END if from_end else OFFSET_BEGINNING,
        add_config=settings.kafka_extra_config, batch_size=settings.batch_size,
    )
    closed = op.input("ticks_in", flow, source)
    # PartitionReport | DeadLetter  (decoded and windowed where each partition is read)
    outcome = op.branch("split_reports", closed, is_report)
    reports = op.map("key_by_spec", outcome.trues, key_by_spec)
    # (spec, PartitionReport)
    ranked = op.stateful_batch("rank", reports, ranking.build_logic)
    # (spec, RankedWindow)
    windows = op.map("drop_spec", ranked, drop_key)
    # RankedWindow
    op.output("leaders_out", windows, RedisLeaderboardSink(
        settings.redis_url, settings.history_ttl_s, settings.redis_retry_max_s,
        settings.future_max_ahead_of_clock_s,
    ))
    rejected = cast(op.Stream[DeadLetter], outcome.falses)  # what is not a report
    letters = op.map("count_rejections", rejected, count_rejection)
    # DeadLetter
    op.output("dlq_out", letters, DeadLetterSink(
        settings.kafka_bootstrap_servers, settings.dlq_topic, settings.kafka_extra_config
    ))
    return flow


def __getattr__(name: str) -> Dataflow:
    """`flow`, built on first access from the environment (for `bytewax.run ...flow:flow`)."""
    if name == "flow":
        return build_flow(DataflowSettings())
    raise AttributeError(name)
