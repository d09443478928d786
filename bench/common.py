"""Shared helpers of the benchmarks: machine facts, the fanned-out real input, servers,
pre-filled topics, metrics scraping and the results table.

Input: the real Lean trades of AIG, BAC, IBM and SPY on 2013-10-07 from 09:30 ET
(`data/marketdata/lean-us-equities/`), fanned out to N symbols: each source tick is copied to
every variant `AIG.0 .. AIG.k` of its symbol (so every variant has a real stock's tick
timing), with a deterministic per-variant price factor (+-0.1 %) and a small per-tick jitter.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import islice
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEAN_TICKS = REPO / "data/marketdata/lean-us-equities/tick_trades_20131007_AIG_BAC_IBM_SPY.csv.gz"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
QUIX_PYTHON = REPO / ".cache/venv-quix/bin/python"
SECTIONS = (
    "window_engine",
    "end_to_end",
    "latency",
    "holdback",
    "memory",
    "quix",
    "flink",
    "redis_sink",
)


# -- machine facts -------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, str]:
    from importlib.metadata import version

    import bytewax  # noqa: F401 - version via metadata

    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "bytewax": version("bytewax"),
        "os": f"{platform.system()} {platform.release()}",
    }


def print_header(name: str, inputs: dict[str, object]) -> None:
    facts = machine_facts()
    print(f"== bench.{name}", flush=True)
    print("machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))
    print("inputs:  " + ", ".join(f"{k}={v}" for k, v in inputs.items()), flush=True)


# -- input -----------------------------------------------------------------------------------


@cache
def source_ticks() -> tuple:
    """The real Lean trades from 09:30 ET, in event-time order (377,302 ticks)."""
    from services.replay.reader import iter_ticks

    return tuple(sorted(iter_ticks(LEAN_TICKS, from_time="09:30"), key=lambda t: t.ts_ms))


def variants(n_symbols: int, sources: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
    """N symbols split over the sources as evenly as possible: (name, price factor) each."""
    out: dict[str, list[tuple[str, float]]] = {}
    for rank, src in enumerate(sorted(sources)):
        count = n_symbols // len(sources) + (1 if rank < n_symbols % len(sources) else 0)
        out[src] = [
            (f"{src}.{j}", 1.0 + (((j + 1) * 2654435761) % 2001 - 1000) * 1e-6)
            for j in range(count)
        ]
    return out


def fan_out(n_symbols: int, limit: int | None = None) -> Iterator:
    """The source ticks copied to every variant of their symbol, prices jittered; at most
    `limit` ticks."""
    from stockstream.ticks import Tick

    ticks = source_ticks()
    table = variants(n_symbols, sorted({t.symbol for t in ticks[:5000]}))

    def generate() -> Iterator[Tick]:
        for k, tick in enumerate(ticks):
            for j, (name, factor) in enumerate(table[tick.symbol]):
                jitter = 1.0 + ((k * 7 + j * 13) % 11 - 5) * 2e-5
                yield Tick(
                    name, round(tick.price * factor * jitter, 6), tick.ts_ms, tick.size, "bench"
                )

    return generate() if limit is None else islice(generate(), limit)


def fanned(n_symbols: int, limit: int) -> list:
    return list(fan_out(n_symbols, limit))


def span_s(ticks: Sequence) -> float:
    return (ticks[-1].ts_ms - ticks[0].ts_ms) / 1000 if ticks else 0.0


# -- timing --------------------------------------------------------------------------------


@dataclass
class Timed:
    seconds: float
    cpu_seconds: float


@contextlib.contextmanager
def timed() -> Iterator[Timed]:
    result = Timed(0.0, 0.0)
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - wall
        result.cpu_seconds = time.process_time() - cpu


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


# -- servers, topics, producing --------------------------------------------------------------


@contextlib.contextmanager
def servers(
    need_kafka: bool = True, redis_persistence: bool = True
) -> Iterator[tuple[str | None, str]]:
    """(bootstrap or None, redis URL) of a broker and a redis-server started here (with AOF
    and RDB snapshots, as deployed, unless `redis_persistence` is False)."""
    from stockstream.embedded.kafka_broker import KafkaBroker
    from stockstream.embedded.redis_server import RedisServer

    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(RedisServer(persistence=redis_persistence)).url
        bootstrap = stack.enter_context(KafkaBroker(heap="1g")).bootstrap if need_kafka else None
        yield bootstrap, redis_url


def prefill(bootstrap: str, topic: str, ticks: Sequence, partitions: int) -> int:
    """Create `topic` and publish `ticks` as the replay would (key = symbol, value = JSON);
    prints how long it took."""
    from stockstream.embedded.topics import create_topic
    from stockstream.kafka import DeliveryStats, create_producer, produce
    from stockstream.ticks import encode

    started = time.perf_counter()
    create_topic(bootstrap, topic, partitions)
    stats = DeliveryStats()
    producer = create_producer(bootstrap, client_id="bench", on_delivery=stats)
    for tick in ticks:
        key, value = encode(tick)
        produce(producer, topic, key, value)
    assert producer.flush(120) == 0 and stats.failed == 0, stats
    print(
        f"pre-filled {stats.delivered:,} ticks in {time.perf_counter() - started:.1f} s", flush=True
    )
    return stats.delivered


def dataflow_env(bootstrap: str, topic: str, redis_url: str, **extra: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TICKS_TOPIC": topic,
        "DLQ_TOPIC": f"{topic}.dlq",
        "REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "METRICS_PORT": "0",
        **extra,
    }


# -- metrics ---------------------------------------------------------------------------------


def scrape(port: int) -> dict[str, float]:
    """`name{labels}` -> value from a process's /metrics (empty if it is not up)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def histogram_buckets(
    samples: dict[str, float], name: str, labels: dict[str, str] | None = None
) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of each bucket, ascending; `labels` selects one child
    of a labelled histogram (`{"phase": "close"}`). Labels may come in any order."""
    buckets = []
    for key, value in samples.items():
        head, brace, rest = key.partition("{")
        if head != f"{name}_bucket" or not brace:
            continue
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        bound = pairs.pop("le", None)
        if bound is not None and pairs == (labels or {}):
            buckets.append((float(bound), value))
    return sorted(buckets)


def histogram_quantile(samples: dict[str, float], name: str, q: float) -> float:
    """Upper bound of the bucket holding quantile `q` (Prometheus-style, no interpolation)."""
    buckets = histogram_buckets(samples, name)
    total = buckets[-1][1] if buckets else 0
    for bound, count in buckets:
        if total and count >= q * total:
            return bound
    return float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# -- results ---------------------------------------------------------------------------------


def write_results(
    name: str, rows: Sequence[tuple[str, ...]], headers: tuple[str, ...], notes: Sequence[str] = ()
) -> Path:
    """Write this bench's table to results/<name>.md and rebuild results/latest.md."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    facts = machine_facts()
    lines = [
        f"## {name}",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; "
        + ", ".join(f"{k} {v}" for k, v in facts.items()),
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", *notes, ""] if notes else [""]
    (RESULTS_DIR / f"{name}.md").write_text("\n".join(lines))
    parts = ["# Benchmark results (latest run of each bench)", ""]
    for section in SECTIONS:
        path = RESULTS_DIR / f"{section}.md"
        if path.is_file():
            parts.append(path.read_text())
    latest = RESULTS_DIR / "latest.md"
    latest.write_text("\n".join(parts))
    print("\n".join(lines[4:]), flush=True)
    print(f"results: {latest}", flush=True)
    return latest


def run_module(
    module: str,
    args: Sequence[str] = (),
    python: str | None = None,
    timeout_s: float = 3600,
    env: dict[str, str] | None = None,
) -> str:
    """Run `python -m module args` and return its stdout (raises on failure)."""
    proc = subprocess.run(
        [python or sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout
