"""Apache Flink 2.2 peer: the same job as Flink SQL in a local MiniCluster, same broker, same
pre-filled topic; results compared first, then steady-state ticks/s and CPU-seconds per
million ticks for both, at 1 and 2 processes (ours) / slots (Flink, defaults and object reuse).

Flink: `bench/flink/FlinkLeaders.java` (HOP 1/5/15 min every 10 s, AVG per symbol, window top-3
by ROW_NUMBER, JSON with ISO-8601 `ts`, watermark ts - 5 s, no checkpointing), jars from
Maven Central by `bench/flink/pom.xml` into `.cache/flink/libs`, compiled with javac.
Ours: `python -m dataflows.leaders`, bounded, writing Redis, as in `bench.end_to_end`.

Steady state, as `bench.end_to_end`: between 10 % and 90 % of the topic consumed (ours: the
processes' decoded counters; Flink: its consumer group's offsets, auto-committed every
200 ms), ticks per wall second and process CPU seconds (psutil, user + system) per million.

    .venv/bin/python -m bench.flink_peer [--ticks 3000000] [--symbols 500] [--partitions 4]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from bench.common import (
    REPO,
    dataflow_env,
    fan_out,
    fmt_rate,
    prefill,
    print_header,
    scrape,
    servers,
    write_results,
)
from dataflows.leaders.cluster import LocalCluster
from stockstream.embedded.ports import free_port

FLINK = REPO / "bench/flink"
LIBS = REPO / ".cache/flink/libs"
CLASSES = REPO / ".cache/flink/classes"
LENGTHS_S = (60, 300, 900)
Means = dict[tuple[int, int, str], float]  # (length s, end s, symbol) -> mean
Tops = dict[tuple[int, int], list[str]]  # (length s, end s) -> top-3 symbols


def build_flink() -> None:
    """Flink's jars (Maven Central) and the bench's job class, once."""
    if not any(LIBS.glob("flink-table-runtime-*.jar")):
        subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(FLINK / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={LIBS}",
                "-DincludeScope=runtime",
            ],
            check=True,
        )
    source = FLINK / "FlinkLeaders.java"
    target = CLASSES / "FlinkLeaders.class"
    if not target.is_file() or target.stat().st_mtime < source.stat().st_mtime:
        CLASSES.mkdir(parents=True, exist_ok=True)
        subprocess.run(["javac", "-d", str(CLASSES), "-cp", f"{LIBS}/*", str(source)], check=True)


def follow(
    pids: Callable[[], list[int]],
    consumed: Callable[[], float | None],
    total: int,
    running: Callable[[], bool],
) -> tuple[float, float]:
    """Poll (time, consumed, CPU s) until the run ends; (ticks/s, CPU s per M ticks) between
    10 % and 90 % of `total`."""
    import psutil

    points: list[tuple[float, float, float]] = []
    while running():
        count = consumed()
        cpu = 0.0
        for pid in pids():
            try:
                times = psutil.Process(pid).cpu_times()
                cpu += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        if count is not None:
            points.append((time.perf_counter(), count, cpu))
        time.sleep(0.2)
    lo = next((p for p in points if p[1] >= 0.1 * total), None)
    hi = next((p for p in points if p[1] >= 0.9 * total), None)
    if lo is None or hi is None or hi[1] <= lo[1]:
        return float("nan"), float("nan")
    ticks = hi[1] - lo[1]
    return ticks / (hi[0] - lo[0]), (hi[2] - lo[2]) / ticks * 1e6


def run_flink(
    bootstrap: str, topic: str, *, slots: int, reuse: bool, total: int, out: Path
) -> tuple[float, float, Means, Tops]:
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    group = f"bench-flink-{slots}-{reuse}-{time.monotonic_ns()}"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [
                "java",
                "-Xmx2g",
                "-cp",
                f"{LIBS}/*:{CLASSES}",
                "FlinkLeaders",
                bootstrap,
                topic,
                group,
                str(slots),
                str(reuse).lower(),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    watcher = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    parts = [
        TopicPartition(topic, p)
        for p in watcher.list_topics(topic, timeout=30).topics[topic].partitions
    ]

    def consumed() -> float | None:
        try:
            return float(sum(max(0, tp.offset) for tp in watcher.committed(parts, timeout=5)))
        except KafkaException:  # the group has no offsets yet
            return None

    try:
        rate, cpu_per_m = follow(lambda: [proc.pid], consumed, total, lambda: proc.poll() is None)
    finally:
        watcher.close()
        if proc.poll() is None:
            proc.kill()
    if proc.wait() != 0:
        raise RuntimeError(f"flink failed:\n{out.read_text()[-3000:]}")
    means: Means = {}
    tops: dict[tuple[int, int], dict[int, str]] = {}
    for line in out.read_text().splitlines():
        row = line.partition("+I[")[2].rstrip("]").split("|")
        if len(row) < 5:
            continue
        end_s = int(datetime.fromisoformat(row[2]).replace(tzinfo=UTC).timestamp())
        if row[0] == "M":
            means[(int(row[1]), end_s, row[3])] = float(row[4])
        elif row[0] == "T":
            tops.setdefault((int(row[1]), end_s), {})[int(row[3])] = row[4]
    return rate, cpu_per_m, means, {k: [v[r] for r in sorted(v)] for k, v in tops.items()}


def run_ours(
    bootstrap: str, topic: str, redis_url: str, *, processes: int, total: int, log_dir: Path
) -> tuple[float, float]:
    ports = [free_port() for _ in range(processes)]
    cluster = LocalCluster(
        dataflow_env(bootstrap, topic, redis_url, BOUNDED="true"),
        processes=processes,
        log_dir=log_dir,
    )
    cluster.start_with_env([{"METRICS_PORT": str(p)} for p in ports])

    def consumed() -> float | None:
        counts = [
            c for p in ports if (c := scrape(p).get("stockstream_ticks_decoded_total")) is not None
        ]
        return sum(counts) if len(counts) == len(ports) else None

    try:
        rate, cpu_per_m = follow(
            lambda: [p.pid for p in cluster.procs],
            consumed,
            total,
            lambda: any(p.poll() is None for p in cluster.procs),
        )
        assert cluster.wait(60) == [0] * processes, cluster.log_tail()
    finally:
        cluster.stop()
    return rate, cpu_per_m


def our_results(redis_url: str) -> tuple[Means, Tops]:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    means: Means = {}
    tops: Tops = {}
    for length in LENGTHS_S:
        name = f"{length // 60}m"
        for key in client.scan_iter(f"history:means:{name}:*", count=1000):
            end_s = int(key.rsplit(":", 1)[1])
            scored = cast(list[tuple[str, float]], client.zrange(key, 0, -1, withscores=True))
            for symbol, mean in scored:
                means[(length, end_s, symbol)] = mean
            leaders = cast(
                list[tuple[str, float]],
                client.zrange(f"history:leaders:{name}:{end_s}", 0, -1, withscores=True),
            )
            tops[(length, end_s)] = [s for s, _ in sorted(leaders, key=lambda e: (-e[1], e[0]))]
    return means, tops


def compare(ours: tuple[Means, Tops], flink: tuple[Means, Tops]) -> str:
    """Every window's means and top-3s, ours against Flink's; a line saying what differs."""
    (our_means, our_tops), (flink_means, flink_tops) = ours, flink
    problems = []
    if our_means.keys() != flink_means.keys():
        problems.append(
            f"windows differ: {len(our_means.keys() - flink_means.keys())} rows "
            f"only ours, {len(flink_means.keys() - our_means.keys())} only Flink's"
        )
    common = our_means.keys() & flink_means.keys()
    worst = max(
        (abs(our_means[k] - flink_means[k]) / abs(flink_means[k]) for k in common),
        default=float("nan"),
    )
    if not worst < 1e-9:
        problems.append(f"means differ: max relative difference {worst:.3g}")
    differing = [k for k in flink_tops if our_tops.get(k) != flink_tops[k]]
    if differing or our_tops.keys() != flink_tops.keys():
        problems.append(
            f"top-3 differ in {len(differing)} of {len(flink_tops)} windows, "
            f"e.g. {[(k, our_tops.get(k), flink_tops[k]) for k in differing[:2]]}"
        )
    ends = len({k[:2] for k in common})
    summary = (
        f"{ends} windows, {len(common):,} means (max relative difference {worst:.2g}), "
        f"{len(flink_tops)} top-3s"
    )
    return (
        f"results DIFFER ({summary}): " + "; ".join(problems)
        if problems
        else (f"results match: {summary} equal")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=3_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--parallelism",
        default="1,2",
        help="processes (ours) and slots (Flink) to run, comma separated",
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    build_flink()
    print_header(
        "flink_peer",
        {
            "symbols": args.symbols,
            "ticks": args.ticks,
            "partitions": args.partitions,
            "flink": "2.2.0 MiniCluster",
        },
    )
    rows: dict[str, tuple[float, float]] = {}
    with servers() as (bootstrap, redis_url), tempfile.TemporaryDirectory() as tmp:
        assert bootstrap is not None
        topic = "bench.flink"
        total = prefill(bootstrap, topic, list(fan_out(args.symbols, args.ticks)), args.partitions)
        ours: tuple[Means, Tops] | None = None
        levels = [int(n) for n in args.parallelism.split(",")]
        for n in levels:
            for reuse in (False, True):
                label = f"Flink, {n} slot(s){', object reuse' if reuse else ''}"
                rate, cpu, means, tops = run_flink(
                    bootstrap,
                    topic,
                    slots=n,
                    reuse=reuse,
                    total=total,
                    out=Path(tmp) / f"flink{n}{reuse}.txt",
                )
                rows[label] = (rate, cpu)
                print(f"{label}: {fmt_rate(rate)} ticks/s, {cpu:.2f} CPU s/M ticks", flush=True)
                if ours is None:
                    flink_results = (means, tops)
                    ours_label = f"ours, {n} process(es)"
                    rows[ours_label] = run_ours(
                        bootstrap,
                        topic,
                        redis_url,
                        processes=n,
                        total=total,
                        log_dir=Path(tmp) / f"ours{n}",
                    )
                    print(
                        f"{ours_label}: {fmt_rate(rows[ours_label][0])} ticks/s, "
                        f"{rows[ours_label][1]:.2f} CPU s/M ticks",
                        flush=True,
                    )
                    ours = our_results(redis_url)
                    print(compare(ours, flink_results), flush=True)
                else:
                    print(compare(ours, (means, tops)), flush=True)
            label = f"ours, {n} process(es)"
            if label not in rows:
                rows[label] = run_ours(
                    bootstrap,
                    topic,
                    redis_url,
                    processes=n,
                    total=total,
                    log_dir=Path(tmp) / f"ours{n}",
                )
                print(
                    f"{label}: {fmt_rate(rows[label][0])} ticks/s, {rows[label][1]:.2f} "
                    f"CPU s/M ticks",
                    flush=True,
                )
    table = []
    for label, (rate, cpu) in rows.items():
        print(f"{label}: sustained {fmt_rate(rate)} ticks/s, {cpu:.2f} CPU s per M ticks")
        table.append((label, fmt_rate(rate), f"{cpu:.2f}"))
    for n in levels:
        ours_cpu = rows[f"ours, {n} process(es)"][1]
        for reuse in (False, True):
            label = f"Flink, {n} slot(s){', object reuse' if reuse else ''}"
            print(f"CPU per tick, ours / {label}: {ours_cpu / rows[label][1]:.2f}x")
    if not args.no_write:
        write_results(
            "flink",
            table,
            ("run", "sustained ticks/s", "CPU s per M ticks"),
            notes=[
                f"{total:,} ticks, {args.symbols} symbols, {args.partitions} "
                "partitions; steady state = 10-90 % of the topic. Results "
                "compared first (every window's means and top-3s)."
            ],
        )


if __name__ == "__main__":
    main()
