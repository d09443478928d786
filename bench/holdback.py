"""Hold-back: how long a partition keeps a closed window before emitting it, replaying a
pre-filled topic through the dataflow's own source partitions on one thread.

The partitions (`PartitionWindowsSource`, the broker's real consume batches of `BATCH_SIZE`)
are polled in turn, as a Bytewax worker polls them. Each engine's `ingest` is wrapped to note
when its watermark passes a window end (the moment the window may close); the figure is the
wall time from there to the `next_batch` return that carries the closed window. Per window
(as the ranking sees it): from the last partition's crossing to the last partition's return.
A replay is the worst case for it: every consume batch is full.

    .venv/bin/python -m bench.holdback [--ticks 400000] [--symbols 20] [--batch-size 2000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.common import (
    fanned,
    percentile,
    prefill,
    print_header,
    servers,
    span_s,
    write_results,
)


def instrument(engine: Any, crossed: dict[int, float]) -> None:
    """Note (once per window end) when this engine's watermark first passes the end."""
    from dataflows.leaders.specs import PANE_MS

    ingest: Callable[[Any], bool] = engine.ingest

    def noting_ingest(tick: Any) -> bool:
        before = engine.watermark_ms
        kept = ingest(tick)
        after = engine.watermark_ms
        if after is not None and (before is None or after // PANE_MS > before // PANE_MS):
            now = time.perf_counter()
            first = (after // PANE_MS if before is None else before // PANE_MS + 1) * PANE_MS
            for end_ms in range(first, (after // PANE_MS) * PANE_MS + 1, PANE_MS):
                crossed.setdefault(end_ms, now)
        return kept

    engine.ingest = noting_ingest


def replay(bootstrap: str, topic: str, batch_size: int) -> dict[str, Any]:
    """Drive every partition to the end; crossing and return times per (partition, end)."""
    from dataflows.leaders.engine import PartitionReport
    from dataflows.leaders.source import EngineConfig, PartitionWindowsSource
    from dataflows.leaders.specs import DEFAULT_SPECS

    config = EngineConfig(DEFAULT_SPECS, 5_000, 3, topic, idle_tick_s=None)
    source = PartitionWindowsSource(
        [bootstrap], config, tail=False, starting_offset=-2, add_config={}, batch_size=batch_size
    )
    parts = {name: source.build_part("ticks_in", name, None) for name in source.list_parts()}
    crossed: dict[str, dict[int, float]] = {name: {} for name in parts}
    returned: dict[str, dict[int, float]] = {name: {} for name in parts}
    for name, part in parts.items():
        instrument(part.engine, crossed[name])
    calls = 0
    cpu = time.process_time()
    while parts:
        for name, part in list(parts.items()):
            try:
                items = part.next_batch()
            except StopIteration:
                part.close()
                del parts[name]
                continue
            calls += 1
            now = time.perf_counter()
            for item in items:
                if isinstance(item, PartitionReport):
                    for window in item.parts:
                        returned[name].setdefault(window.end_ms, now)
    return {
        "crossed": crossed,
        "returned": returned,
        "calls": calls,
        "cpu_s": time.process_time() - cpu,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=400_000)
    parser.add_argument("--symbols", type=int, default=20)  # 20: > 100 window ends
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    print_header("holdback", vars(args))
    ticks = fanned(args.symbols, args.ticks)
    print(f"{len(ticks):,} ticks over {span_s(ticks):.0f} s of event time", flush=True)
    with servers() as (bootstrap, _redis_url):
        assert bootstrap is not None
        topic = "bench.holdback"
        prefill(bootstrap, topic, ticks, args.partitions)
        result = replay(bootstrap, topic, args.batch_size)
    crossed, returned = result["crossed"], result["returned"]
    per_partition = [
        (returned[p][end] - crossed[p][end]) * 1000
        for p in returned
        for end in returned[p]
        if end in crossed[p] and end < max(returned[p])
    ]  # not the end-of-input flush
    ends = set.intersection(*(set(r) for r in returned.values()))
    per_window = [
        (max(returned[p][end] for p in returned) - max(crossed[p][end] for p in crossed)) * 1000
        for end in ends
        if all(end in crossed[p] for p in crossed)
    ]
    ms_per_call = result["cpu_s"] * 1000 / max(1, result["calls"])
    print(
        f"{len(ticks) / result['cpu_s']:,.0f} ticks per CPU-s through the source "
        f"({result['calls']:,} next_batch calls, {ms_per_call:.2f} ms CPU each)"
    )
    rows = []
    for label, values in (("partition", per_partition), ("window", per_window)):
        rows.append(
            (
                label,
                f"{len(values)}",
                f"{percentile(values, 0.5):.1f}",
                f"**{percentile(values, 0.99):.1f}**",
                f"{max(values, default=0):.1f}",
            )
        )
        print(
            f"hold-back per {label} (n={len(values)} window ends, x4 specs): "
            f"p50 {percentile(values, 0.5):.1f} ms, p99 {percentile(values, 0.99):.1f} ms, "
            f"max {max(values, default=0):.1f} ms",
            flush=True,
        )
    if not args.no_write:
        write_results(
            "holdback",
            rows,
            ("per", "window ends", "p50 ms", "p99 ms", "max ms"),
            notes=[
                f"Closed window held back: watermark passes the end -> next_batch "
                f"returns it. {len(ticks):,} ticks, {args.symbols} symbols, "
                f"{args.partitions} partitions, BATCH_SIZE {args.batch_size}, "
                f"{len(ticks) / result['cpu_s']:,.0f} ticks per CPU-s."
            ],
        )


if __name__ == "__main__":
    main()
