"""The pane engine against Bytewax's own `SlidingWindower` + `fold_window` on the same ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import bytewax.operators as op
import bytewax.operators.windowing as win
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, TestingSource, run_main

from dataflows.leaders.engine import PartitionEngine
from dataflows.leaders.specs import DEFAULT_SPECS, Score, WindowSpec
from services.replay.reader import iter_ticks
from stockstream.ticks import Tick
from tests.dataflows.leaders.compare import close
from tests.dataflows.leaders.pipeline import LEAN_TICKS, SSE_FILE

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bytewax_means(ticks: list[Tick], length_s: int) -> dict[tuple[str, int], tuple[int, float]]:
    """{(symbol, end ms): (count, mean)} from Bytewax's sliding windows."""
    flow = Dataflow("reference")
    keyed = op.key_on("key", op.input("in", flow, TestingSource(ticks)), lambda t: t.symbol)
    clock: win.EventClock[Tick] = win.EventClock(
        lambda t: EPOCH + timedelta(milliseconds=t.ts_ms),
        wait_for_system_duration=timedelta(seconds=5),
        # A frozen system clock: the watermark is the latest event time - 5 s, as in our
        # engine. With the real clock a stall of a loaded machine moved Bytewax's watermark
        # on by wall time, so it dropped ticks ours keeps (a failure seen only under load).
        now_getter=lambda: EPOCH,
    )
    windower = win.SlidingWindower(timedelta(seconds=length_s), timedelta(seconds=10), EPOCH)
    folded = win.fold_window(
        "mean",
        keyed,
        clock,
        windower,
        lambda: (0, 0.0),
        lambda acc, t: (acc[0] + 1, acc[1] + t.price),
        lambda a, b: (a[0] + b[0], a[1] + b[1]),
    )
    values: list = []
    metas: list = []
    op.output("values", folded.down, TestingSink(values))
    op.output("metas", folded.meta, TestingSink(metas))
    run_main(flow)
    ends = {(symbol, wid): meta.close_time for symbol, (wid, meta) in metas}
    return {
        (symbol, int((ends[(symbol, wid)] - EPOCH).total_seconds() * 1000)): (n, total / n)
        for symbol, (wid, (n, total)) in values
    }


def engine_means(ticks: list[Tick], spec_name: str) -> dict[tuple[str, int], tuple[int, float]]:
    engine = PartitionEngine("0", DEFAULT_SPECS, lateness_ms=5_000)
    for tick in ticks:
        assert engine.ingest(tick)
    reports = engine.close_all(now_s=0.0)
    return {
        (row.symbol, part.end_ms): (row.count, row.mean)
        for report in reports
        if report.spec == spec_name
        for part in report.parts
        for row in part.rows
    }


def sample(name: str) -> list[Tick]:
    if name == "sse":
        return list(iter_ticks(SSE_FILE, from_time="09:30"))[:6000]
    ticks = list(iter_ticks(LEAN_TICKS, from_time="09:30"))[::50]
    return sorted(ticks, key=lambda t: t.ts_ms)


@pytest.mark.parametrize("data", ["sse", "lean"])
@pytest.mark.parametrize(
    "spec", [s for s in DEFAULT_SPECS if s.score == Score.MEAN], ids=lambda s: s.name
)
def test_same_windows_and_means_as_bytewax(data: str, spec: WindowSpec) -> None:
    ticks = sample(data)
    ours = engine_means(ticks, spec.name)
    theirs = bytewax_means(ticks, spec.length_s)
    assert len(ours) > 100
    assert sorted(ours) == sorted(theirs)
    for key, (count, mean) in theirs.items():
        assert ours[key][0] == count, key
        assert close(ours[key][1], mean), key
