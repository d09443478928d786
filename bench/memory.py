"""Memory: resident set per symbol of the engine state, 10,000 symbols, full 15-minute windows.

Measured in a fresh subprocess: RSS (from /proc via psutil) after loading the input and
building the engine empty, then after ingesting 15 minutes + one pane of real ticks in which
every symbol has ticks in every 10-s pane (91 panes each, the horizon), and again once the
next end's older panes are folded ahead (`prepare_ahead`, which the dataflow holds between
ends). The difference over the symbol count is the figure. Also times one slide's close.

    .venv/bin/python -m bench.memory [--symbols 10000] [--ticks-per-pane 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

from bench.common import print_header, run_module, source_ticks, variants, write_results


def synthetic_source() -> tuple:
    """Four symbols with a tick every 2 s over 16 minutes (no CSV to parse: a quick run)."""
    from stockstream.ticks import Tick

    start_ms = 1_381_152_600_000
    return tuple(
        Tick(symbol, 30.0 + (k % 7) * 0.01, start_ms + k * 2000, 100.0, "synthetic")
        for k in range(480)
        for symbol in ("AIG", "BAC", "IBM", "SPY")
    )


def measure(n_symbols: int, per_pane: int, synthetic: bool = False) -> dict[str, float]:
    import psutil

    from dataflows.leaders.engine import PartitionEngine
    from dataflows.leaders.specs import DEFAULT_SPECS, PANE_MS
    from stockstream.ticks import Tick

    source = synthetic_source() if synthetic else source_ticks()
    table = variants(n_symbols, sorted({t.symbol for t in source[:5000]}))
    horizon = max(s.length_panes for s in DEFAULT_SPECS) + 1
    first_pane = source[0].ts_ms // PANE_MS + 1
    by_pane: dict[tuple[int, str], list] = {}
    for tick in source:
        pane = tick.ts_ms // PANE_MS - first_pane
        if 0 <= pane < horizon:
            by_pane.setdefault((pane, tick.symbol), []).append(tick)
    engine = PartitionEngine("0", DEFAULT_SPECS, lateness_ms=5_000)
    gc.collect()
    rss = psutil.Process().memory_info().rss
    ingested = 0
    ingest_cpu_s = 0.0  # engine.ingest only, not building the ticks
    last: dict[str, Tick] = {}
    for pane in range(horizon):
        batch = []
        for src, names in table.items():
            pane_ticks = by_pane.get((pane, src))
            if not pane_ticks:  # no trade of this stock in this pane: reuse the previous one's
                pane_ticks = [Tick(src, last[src].price, (first_pane + pane) * PANE_MS)]
            last[src] = pane_ticks[-1]
            for j, (name, factor) in enumerate(names):
                for i in range(per_pane):
                    t = pane_ticks[(j + i) % len(pane_ticks)]
                    batch.append(Tick(name, round(t.price * factor, 6), t.ts_ms, t.size, "bench"))
        batch.sort(key=lambda t: t.ts_ms)
        started = time.process_time()
        for tick in batch:
            engine.ingest(tick)
        ingest_cpu_s += time.process_time() - started
        ingested += len(batch)
        del batch
        engine.close_ready(0.0)  # as the dataflow does: windows close while ticks arrive
    gc.collect()
    grown = psutil.Process().memory_info().rss - rss
    # Between two ends the dataflow also holds the next end's older panes folded ahead
    # (`PartitionEngine.prepare_ahead`, called by the source while no window is closing).
    # It prepares once the watermark is half a pane before the next end: idle time takes it
    # there, as quiet input would.
    next_close_ms, max_ts_ms = engine.next_close_ms(), engine.max_ts_ms
    assert next_close_ms is not None and max_ts_ms is not None
    engine.advance_idle(next_close_ms - PANE_MS // 2 - (max_ts_ms - engine.lateness_ms))
    assert engine.prepare_ahead(), "the next end's older panes were not prepared"
    gc.collect()
    grown_prepared = psutil.Process().memory_info().rss - rss
    panes = sum(len(p) for p in engine.panes.values())
    started = time.process_time()
    engine.advance_idle(PANE_MS)  # the watermark passes the last pane's end: one slide closes
    reports = engine.close_ready(0.0)
    close_s = time.process_time() - started
    return {
        "symbols": len(engine.panes),
        "panes": panes,
        "ticks": ingested,
        "rss_growth_bytes": grown,
        "per_symbol_bytes": grown / len(engine.panes),
        "per_symbol_bytes_prepared": grown_prepared / len(engine.panes),
        "close_ms": close_s * 1000,
        "ingest_ns_per_tick": ingest_cpu_s / ingested * 1e9,
        "rows": sum(len(p.rows) for r in reports for p in r.parts),
    }


def main(argv: list[str] | None = None) -> None:
    if argv is None and sys.argv[1:2] == ["--child"]:
        print(json.dumps(measure(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:5] == ["1"])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--ticks-per-pane", type=int, default=2)
    parser.add_argument(
        "--synthetic",
        action="store_true",
        help="synthetic ticks instead of the Lean day (a quicker run, same layout)",
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    print_header(
        "memory",
        {
            "symbols": args.symbols,
            "ticks_per_symbol_per_pane": args.ticks_per_pane,
            "panes_per_symbol": 91,
        },
    )
    child = ["--child", str(args.symbols), str(args.ticks_per_pane), "1" if args.synthetic else "0"]
    result = json.loads(run_module("bench.memory", child).splitlines()[-1])
    kb = result["per_symbol_bytes"] / 1024
    print(
        f"{result['symbols']:,} symbols, {result['panes']:,} panes, {result['ticks']:,} ticks: "
        f"RSS +{result['rss_growth_bytes'] / 2**20:.1f} MiB = {kb:.1f} KB/symbol "
        f"({result['per_symbol_bytes'] / (result['panes'] / result['symbols']):.0f} B/pane); "
        f"closing one slide: {result['close_ms']:.0f} ms CPU, {result['rows']:,} rows; "
        f"ingest {result['ingest_ns_per_tick']:.0f} ns CPU/tick = "
        f"{1e9 / result['ingest_ns_per_tick']:,.0f} ticks per CPU-s",
        flush=True,
    )
    kb_prepared = result["per_symbol_bytes_prepared"] / 1024
    print(
        f"with the next end's older panes folded ahead, as the dataflow holds them between "
        f"ends: {kb_prepared:.2f} KB/symbol (+{(kb_prepared - kb) * 1024:.0f} B)"
    )
    print(
        f"target < 10 KB/symbol: {'met' if kb_prepared < 10 else 'missed'} "
        f"({kb_prepared:.2f} KB with the prepared panes, {kb:.2f} KB without)"
    )
    if not args.no_write:
        write_results(
            "memory",
            [
                (
                    f"{result['symbols']:,}",
                    f"{result['panes'] // result['symbols']}",
                    f"{result['rss_growth_bytes'] / 2**20:.1f}",
                    f"**{kb:.1f}**",
                    f"{result['close_ms']:.0f}",
                )
            ],
            ("symbols", "panes/symbol", "RSS growth MiB", "KB/symbol", "close one slide (ms CPU)"),
            notes=[
                "Engine state only (fresh subprocess, RSS before/after). Target: < 10 KB "
                "per symbol."
            ],
        )


if __name__ == "__main__":
    main()
