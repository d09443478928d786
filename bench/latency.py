"""Latency under steady load, tail mode: window close -> leaderboard visible in Redis.

A producer process publishes fanned-out real ticks at a steady rate, each stamped with the
wall clock as its event time; the dataflow runs in tail mode. Two measures:

- the dataflow's own `stockstream_window_emit_latency_seconds` histogram (engine closing the
  window -> Redis script returned; bucket upper bounds);
- an outside view: Redis polled every ms for `window:N` of every spec; latency = first seen -
  (window end + allowed lateness), i.e. from the moment event time passes the watermark
  point, including broker transport.

The rate starts at `--rate` and is halved until the dataflow keeps up (decoded >= 95 % of
produced over a `--probe-s` probe); the figures are for the highest sustained rate.

    .venv/bin/python -m bench.latency [--rate 50000] [--seconds 90] [--symbols 500]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import redis

from bench.common import (
    dataflow_env,
    fmt_rate,
    histogram_buckets,
    histogram_quantile,
    percentile,
    print_header,
    scrape,
    servers,
    variants,
    write_results,
)
from dataflows.leaders.cluster import LocalCluster
from dataflows.leaders.specs import PANE_MS
from stockstream.embedded.ports import free_port
from stockstream.embedded.topics import create_topic

LATENCY = "stockstream_window_emit_latency_seconds"
TARGET_RATE = 50_000
TARGET_P99_MS = {500: 50, 10_000: 250}
"""Issue 11's targets, window close -> leaderboard visible, by number of symbols."""
GC_PAUSE = "stockstream_gc_pause_seconds"
PHASE = "stockstream_window_phase_seconds"
PHASES = ("close", "to_sink", "redis_windows", "redis_figures_history")
LATENESS_S = 5.0


def produce(bootstrap: str, topic: str, rate: float, seconds: float, symbols: int) -> None:
    """Steady `rate` ticks/s for `seconds`, event time = now (run in its own process)."""
    from confluent_kafka import Producer

    from bench.common import source_ticks

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 2,
            "compression.type": "lz4",
            "batch.size": 262144,
        }
    )
    source = source_ticks()
    table = variants(symbols, ["AIG", "BAC", "IBM", "SPY"])
    names = [(name, factor, src) for src, vs in table.items() for name, factor in vs]
    last_price = {t.symbol: t.price for t in source[:2000]}
    started, sent, k = time.time(), 0, 0
    while (now := time.time()) - started < seconds:
        due = int((now - started) * rate)
        while sent < due:
            name, factor, src = names[sent % len(names)]
            if sent % len(names) == 0:
                k += 1
                tick = source[k % len(source)]
                last_price[tick.symbol] = tick.price
            ms = int(time.time() * 1000)
            ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
            value = (
                f'{{"schema_version":1,"symbol":"{name}","price":'
                f'{round(last_price[src] * factor, 6)!r},"size":100,"ts":"{ts}",'
                f'"source":"bench"}}'
            )
            while True:
                try:
                    producer.produce(topic, value.encode(), name.encode())
                    break
                except BufferError:  # the broker is behind (a loaded machine): wait for it
                    producer.poll(0.05)
            sent += 1
            if sent % 1000 == 0:
                producer.poll(0)
        time.sleep(0.001)
    producer.flush(30)
    print(sent, flush=True)


WATCHED = ("1m", "5m", "15m", "5m_max")


def watch_redis(redis_url: str, stop: threading.Event, seen: dict[tuple[str, int], float]) -> None:
    """When each window's `window:N` first shows its end: (N, end s) -> wall time.

    Redis is read every millisecond while a window is due (its watermark point, end + the
    lateness, has passed and some spec shown so far has not shown it yet) and not in between:
    a poller at 1 kHz all the time took a good part of a core from the 2 the bench shares."""
    client = redis.Redis.from_url(redis_url)
    pipe = client.pipeline(transaction=False)
    slide_s = PANE_MS // 1000
    newest: dict[str, int] = {}  # spec -> the newest end shown
    while not stop.is_set():
        due_end = int((time.time() - LATENESS_S) // slide_s * slide_s)
        if newest and all(end >= due_end for end in newest.values()):
            next_point = due_end + slide_s + LATENESS_S  # the next window's watermark point
            time.sleep(min(0.05, max(0.0, next_point - time.time())))
            continue
        for name in WATCHED:
            pipe.hget(f"window:{name}", "end")
        now = time.time()
        for name, end in zip(WATCHED, pipe.execute(), strict=True):
            if end is not None:
                newest[name] = max(newest.get(name, 0), int(end))
                if (name, int(end)) not in seen:
                    seen[(name, int(end))] = now
        time.sleep(0.001)


def run_at(
    bootstrap: str,
    topic: str,
    redis_url: str,
    *,
    rate: float,
    seconds: float,
    symbols: int,
    processes: int,
    log_dir: Path,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    ports = [free_port() for _ in range(processes)]
    cluster = LocalCluster(
        dataflow_env(bootstrap, topic, redis_url, BOUNDED="false", **(env or {})),
        processes=processes,
        log_dir=log_dir,
    )
    cluster.start_with_env([{"METRICS_PORT": str(p)} for p in ports])
    stop = threading.Event()
    seen: dict[tuple[str, int], float] = {}
    watcher = threading.Thread(target=watch_redis, args=(redis_url, stop, seen), daemon=True)
    try:
        while not all(scrape(p) for p in ports):
            time.sleep(0.2)
        time.sleep(2)
        before = sum(scrape(p).get("stockstream_ticks_decoded_total", 0) for p in ports)
        admin = redis.Redis.from_url(redis_url)
        admin.config_set("latency-monitor-threshold", 10)  # Redis' own stalls >= 10 ms
        admin.latency_reset()
        forks_before = admin.info("stats")["total_forks"]
        watcher.start()
        producer = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.latency",
                "--produce",
                bootstrap,
                topic,
                str(rate),
                str(seconds),
                str(symbols),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        produced = int(producer.communicate(timeout=seconds + 120)[0].split()[-1])
        time.sleep(1.0)
        samples = [scrape(p) for p in ports]
        decoded = sum(s.get("stockstream_ticks_decoded_total", 0) for s in samples) - before
        stalls = {
            event.decode(): (count_ms, max_ms)
            for event, _, count_ms, max_ms in admin.execute_command("LATENCY", "LATEST")
        }
        forks = admin.info("stats")["total_forks"] - forks_before
    finally:
        stop.set()
        cluster.stop()
    merged: dict[str, float] = {}
    for sample in samples:
        for key, value in sample.items():
            merged[key] = merged.get(key, 0) + value
    first = {name: min((end for n, end in seen if n == name), default=0) for name in WATCHED}
    outside = [
        at - (end + LATENESS_S) for (name, end), at in seen.items() if end != first[name]
    ]  # each spec's first window may predate the watcher
    return {
        "rate": rate,
        "produced": produced,
        "decoded": decoded,
        "kept_up": decoded >= 0.95 * produced,
        "hist_p50": histogram_quantile(merged, LATENCY, 0.5),
        "hist_p99": histogram_quantile(merged, LATENCY, 0.99),
        "hist_count": merged.get(f"{LATENCY}_count", 0),
        "hist_buckets": spread(histogram_buckets(merged, LATENCY)),
        "hist_mean": (merged.get(f"{LATENCY}_sum", 0) / max(1, merged.get(f"{LATENCY}_count", 0))),
        "poll_n": len(outside),
        "poll_p50": percentile(outside, 0.5),
        "poll_p99": percentile(outside, 0.99),
        "poll_max": max(outside, default=float("nan")),
        "poll_slowest": [at * 1000 for at in sorted(outside)[-5:]],
        "redis_stalls": ", ".join(
            f"{event} latest {latest} ms, max {worst} ms"
            for event, (latest, worst) in sorted(stalls.items())
        ),
        "redis_forks": forks,
        "phases": {
            phase: spread(histogram_buckets(merged, PHASE, {"phase": phase})) for phase in PHASES
        },
        "gc_pauses": {
            generation: spread(histogram_buckets(merged, GC_PAUSE, {"generation": str(generation)}))
            for generation in range(3)
        },
    }


def spread(buckets: list[tuple[float, float]]) -> str:
    """Windows per bucket, e.g. `<=20 ms: 31, <=30 ms: 52, <=75 ms: 1` (empty ones left out)."""
    counts, below = [], 0.0
    for bound, cumulative in buckets:
        if cumulative > below and bound != float("inf"):
            counts.append(f"<={bound * 1000:g} ms: {cumulative - below:.0f}")
        elif cumulative > below:
            counts.append(f"more: {cumulative - below:.0f}")
        below = cumulative
    return ", ".join(counts)


def produce_main(argv: list[str]) -> None:
    """`--produce BOOTSTRAP TOPIC RATE SECONDS SYMBOLS`: the producer process of `run_at`."""
    bootstrap, topic, rate, seconds, symbols = argv
    produce(bootstrap, topic, float(rate), float(seconds), int(symbols))


def main(argv: list[str] | None = None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--produce":
        produce_main(sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50_000)
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--probe-s", type=float, default=20)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for the dataflow, e.g. BATCH_SIZE=500"
    )
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--redis-persistence",
        choices=("on", "off"),
        default="on",
        help="off: no AOF, no RDB snapshots, so Redis never forks",
    )
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    print_header("latency", vars(args) | {"lateness_s": LATENESS_S, "mode": "tail"})
    persistence = args.redis_persistence == "on"
    with (
        servers(redis_persistence=persistence) as (bootstrap, redis_url),
        tempfile.TemporaryDirectory() as tmp,
    ):
        assert bootstrap is not None
        rate, tried = args.rate, []
        while True:
            topic = f"bench.latency.{int(rate)}"
            create_topic(bootstrap, topic, args.partitions)
            probe = run_at(
                bootstrap,
                topic,
                redis_url,
                rate=rate,
                seconds=args.probe_s,
                symbols=args.symbols,
                processes=args.processes,
                log_dir=Path(tmp) / topic,
                env=env,
            )
            tried.append(probe)
            print(
                f"probe {fmt_rate(rate)} ticks/s: produced {probe['produced']:,}, decoded "
                f"{probe['decoded']:,.0f} -> {'kept up' if probe['kept_up'] else 'fell behind'}",
                flush=True,
            )
            if probe["kept_up"] or rate <= 2_000:
                break
            rate /= 2
        topic = f"bench.latency.run.{int(rate)}"
        create_topic(bootstrap, topic, args.partitions)
        result = run_at(
            bootstrap,
            topic,
            redis_url,
            rate=rate,
            seconds=args.seconds,
            symbols=args.symbols,
            processes=args.processes,
            log_dir=Path(tmp) / topic,
            env=env,
        )
    ms = {
        k: v * 1000
        for k, v in result.items()
        if k.startswith(("hist_p", "hist_mean", "poll_p", "poll_max"))
    }
    sustained = "requested" if rate == args.rate else "highest sustained"
    print(
        f"rate {fmt_rate(rate)} ticks/s ({sustained}), {result['hist_count']:.0f} windows "
        f"written: histogram p50 <= {ms['hist_p50']:.0f} ms, "
        f"p99 <= {ms['hist_p99']:.0f} ms, mean {ms['hist_mean']:.1f} ms; Redis poll "
        f"(n={result['poll_n']}): p50 {ms['poll_p50']:.1f} ms, p99 {ms['poll_p99']:.1f} ms, "
        f"max {ms['poll_max']:.1f} ms",
        flush=True,
    )
    print(f"histogram, windows per bucket: {result['hist_buckets']}")
    slowest = ", ".join(f"{ms_:.0f}" for ms_ in result["poll_slowest"])
    print(f"Redis poll, the 5 slowest windows (ms): {slowest}")
    print(
        f"Redis: {result['redis_forks']} forks (RDB/AOF rewrite) during the run; its "
        f"latency monitor (>= 10 ms): {result['redis_stalls'] or 'nothing'}"
    )
    for phase, spent in result["phases"].items():
        print(f"phase {phase}, per bucket: {spent or 'none'}")
    for generation, pauses in result["gc_pauses"].items():
        print(f"dataflow GC pauses, generation {generation}: {pauses or 'none'}")
    p99, target_ms = ms["hist_p99"], TARGET_P99_MS.get(args.symbols)
    if target_ms is not None:
        met = p99 < target_ms and rate == args.rate >= TARGET_RATE
        print(
            f"target p99 < {target_ms} ms at {fmt_rate(TARGET_RATE)} ticks/s, {args.symbols:,} "
            f"symbols: {'met' if met else 'missed'} (histogram p99 <= {p99:.0f} ms, "
            f"{fmt_rate(rate)} ticks/s)"
        )
    if not args.no_write:
        write_results(
            "latency",
            [
                (
                    fmt_rate(rate),
                    "yes" if rate == args.rate else f"no, {fmt_rate(args.rate)} fell behind",
                    f"{result['hist_count']:.0f}",
                    f"<= {ms['hist_p50']:.0f}",
                    f"**<= {ms['hist_p99']:.0f}**",
                    f"{ms['hist_mean']:.1f}",
                    f"{ms['poll_p50']:.0f} / {ms['poll_p99']:.0f} / "
                    f"{ms['poll_max']:.0f} (n={result['poll_n']})",
                )
            ],
            (
                "ticks/s",
                "requested rate sustained",
                "windows",
                "close->Redis p50 ms",
                "p99 ms",
                "mean ms",
                "watermark point -> visible p50/p99/max ms (poll)",
            ),
            notes=[
                f"{args.processes} process(es), {args.partitions} partitions, "
                f"{args.symbols} symbols, tail mode. Histogram figures are bucket upper "
                f"bounds. Target: p99 < {target_ms or '(none)'} ms."
            ],
        )


if __name__ == "__main__":
    main()
