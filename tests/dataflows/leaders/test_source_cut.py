"""A partition's consume batch is cut where its watermark passes a window end, so a closed
window is emitted at once; the rest of the batch comes next, survives a snapshot, and the
windows are exactly those of an engine fed the same ticks one by one."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from prometheus_client import REGISTRY

from dataflows.leaders.engine import PartitionEngine, PartitionReport
from dataflows.leaders.source import EngineConfig, PartitionWindowsSource, SourceItem
from dataflows.leaders.specs import DEFAULT_SPECS, PANE_MS
from stockstream.metrics import TICKS_DECODED
from stockstream.ticks import Tick, encode

pytestmark = pytest.mark.integration

T0 = 1_638_322_200_000  # 2021-12-01T01:30:00Z, a multiple of 10 s
LATENESS_MS = 5_000
TICKS = [
    Tick(("AAA", "BBB", "CCC")[i % 3], 10.0 + (i * 7) % 11, T0 + i * 500, 1.0 + i % 4)
    for i in range(400)
]  # 200 s of event time: 20 window ends in one partition


def window_parts(reports: list[PartitionReport]) -> list[tuple[object, ...]]:
    """Every closed window part, comparable: (spec, end, rows, top)."""
    return sorted((p.spec, p.end_ms, p.rows, p.top) for r in reports for p in r.parts)


def reference() -> list[tuple[object, ...]]:
    """The same ticks, one at a time, closing after each: no batches at all."""
    engine = PartitionEngine("0", DEFAULT_SPECS, LATENESS_MS)
    reports = []
    for tick in TICKS:
        assert engine.ingest(tick)
        reports += engine.close_ready(0.0)
    return window_parts(reports + engine.close_all(0.0))


def test_batches_are_cut_at_window_ends_and_resume_from_a_snapshot(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    topic = kafka_topic_factory("ticks", partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for tick in TICKS:
        key, value = encode(tick)
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    config = EngineConfig(DEFAULT_SPECS, LATENESS_MS, 3, topic, idle_tick_s=None)
    source = PartitionWindowsSource(
        [kafka_bootstrap],
        config,
        tail=False,
        starting_offset=-2,
        add_config={},
        batch_size=len(TICKS),
    )
    (name,) = source.list_parts()
    part = source.build_part("ticks_in", name, None)
    decoded_before = TICKS_DECODED._value.get()
    closes_before = close_count()
    closing_batches: list[bool] = []  # per batch: did it close a window?
    items: list[SourceItem] = []
    resumed = False
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the bounded source did not end"
        try:
            batch = part.next_batch()
        except StopIteration:
            break
        items += batch
        closing_batches.append(any(isinstance(i, PartitionReport) and i.parts for i in batch))
        engine = part.engine
        if part.pending:  # cut: the watermark went no further than the window it closed
            assert engine.watermark_ms is not None and engine.closed_through_ms is not None
            assert engine.watermark_ms < engine.closed_through_ms + PANE_MS
            assert any(isinstance(i, PartitionReport) and i.parts for i in batch)
            if not resumed:  # the rest of the batch must survive a snapshot and a restart
                resumed = True
                state = part.snapshot()
                part.close()
                part = source.build_part("ticks_in", name, state)
                assert part.pending
    part.close()

    assert resumed, "one consume batch of 400 ticks spanning 20 window ends was never cut"
    reports = [i for i in items if isinstance(i, PartitionReport)]
    assert len(reports) == len(items), items
    assert window_parts(reports) == reference()
    assert TICKS_DECODED._value.get() - decoded_before == len(TICKS)
    # every batch that closed a window timed its close, but the last: the end of input
    assert close_count() - closes_before == sum(closing_batches[:-1]) > 0


def close_count() -> float:
    """The partition closes timed so far."""
    return (
        REGISTRY.get_sample_value("stockstream_window_phase_seconds_count", {"phase": "close"})
        or 0.0
    )
