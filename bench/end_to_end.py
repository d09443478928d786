"""End to end, bounded mode: a pre-filled topic -> decode -> windows -> top-3 -> Redis, with
1 and with 2 dataflow processes (`python -m dataflows.leaders`, as deployed).

The sustained rate is read from the processes' own `stockstream_ticks_decoded_total`
counters, polled every 0.2 s: ticks decoded between 10 % and 90 % of the topic over the wall
time between those points (start-up and the final flush excluded). Broker and Redis share the
same two cores.

    .venv/bin/python -m bench.end_to_end [--symbols 500] [--ticks 600000] [--partitions 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.common import (
    dataflow_env,
    fanned,
    fmt_rate,
    prefill,
    print_header,
    scrape,
    servers,
    span_s,
    write_results,
)
from dataflows.leaders.cluster import LocalCluster
from stockstream.embedded.ports import free_port

DECODED = "stockstream_ticks_decoded_total"


def run_dataflow(
    bootstrap: str, topic: str, redis_url: str, *, processes: int, total: int, log_dir: Path
) -> tuple[float, float]:
    """(sustained ticks/s, whole wall time s) of one bounded run over the topic."""
    ports = [free_port() for _ in range(processes)]
    env = dataflow_env(bootstrap, topic, redis_url, BOUNDED="true")
    cluster = LocalCluster(env, processes=processes, log_dir=log_dir)
    points: list[tuple[float, float]] = []
    started = time.perf_counter()
    cluster.start_with_env([{"METRICS_PORT": str(p)} for p in ports])
    try:
        while any(proc.poll() is None for proc in cluster.procs):
            counts = [c for p in ports if (c := scrape(p).get(DECODED)) is not None]
            if len(counts) == len(ports):
                points.append((time.perf_counter(), sum(counts)))
            time.sleep(0.2)
        codes = cluster.wait(60)
        assert codes == [0] * processes, cluster.log_tail()
    finally:
        cluster.stop()
    wall = time.perf_counter() - started
    lo = next((p for p in points if p[1] >= 0.1 * total), None)
    hi = next((p for p in points if p[1] >= 0.9 * total), points[-1] if points else None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return total / wall, wall
    return (hi[1] - lo[1]) / (hi[0] - lo[0]), wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=600_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    ticks = fanned(args.symbols, args.ticks)
    print_header(
        "end_to_end",
        {
            "symbols": args.symbols,
            "ticks": len(ticks),
            "event_time_s": round(span_s(ticks)),
            "partitions": args.partitions,
            "mode": "bounded",
        },
    )
    rates: dict[int, float] = {}
    with servers() as (bootstrap, redis_url), tempfile.TemporaryDirectory() as tmp:
        assert bootstrap is not None
        topic = "bench.ticks"
        prefill(bootstrap, topic, ticks, args.partitions)
        for processes in (1, 2):
            sustained, wall = run_dataflow(
                bootstrap,
                topic,
                redis_url,
                processes=processes,
                total=len(ticks),
                log_dir=Path(tmp) / f"p{processes}",
            )
            rates[processes] = sustained
            print(
                f"processes={processes}: sustained {fmt_rate(sustained)} ticks/s "
                f"(whole run {wall:.1f} s incl. start-up = {fmt_rate(len(ticks) / wall)} "
                f"ticks/s)",
                flush=True,
            )
    scaling = rates[2] / rates[1]
    print(
        f"ratio 2 processes / 1 process: {scaling:.2f}x (target >= 1.7x: "
        f"{'met' if scaling >= 1.7 else 'missed'})",
        flush=True,
    )
    if not args.no_write:
        write_results(
            "end_to_end",
            [
                (
                    f"{args.symbols:,}",
                    f"{len(ticks):,}",
                    str(args.partitions),
                    fmt_rate(rates[1]),
                    fmt_rate(rates[2]),
                    f"**{scaling:.2f}x**",
                )
            ],
            (
                "symbols",
                "ticks",
                "partitions",
                "1 process ticks/s",
                "2 processes ticks/s",
                "scaling",
            ),
            notes=[
                "Sustained = decoded ticks between 10 % and 90 % of the topic per wall "
                "second. Kafka broker (JVM) and redis-server run on the same 2 cores. "
                "Target: scaling >= 1.7x."
            ],
        )


if __name__ == "__main__":
    main()
