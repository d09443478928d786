"""Helpers of the end-to-end tests: publish real ticks, run the dataflow, read Redis back."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import cast

import redis
from confluent_kafka import Producer

from dataflows.leaders.cluster import LocalCluster
from dataflows.leaders.specs import WindowSpec
from services.replay.producer import run_replay
from services.replay.settings import ReplaySettings
from stockstream.ticks import Tick, encode
from tests.dataflows.leaders.oracle import OracleWindow

REPO = Path(__file__).resolve().parents[3]
SSE_FILE = REPO / "data/marketdata/sse-30-stocks/sse_snapshot_30stocks_20211201.csv.gz"
LEAN_TICKS = REPO / "data/marketdata/lean-us-equities/tick_trades_20131007_AIG_BAC_IBM_SPY.csv.gz"


def publish_file(bootstrap: str, topic: str, path: Path, from_time: str | None = None) -> int:
    """Replay a market-data file as fast as possible with the replay service's own code."""
    settings = ReplaySettings(
        kafka_bootstrap_servers=bootstrap,
        ticks_topic=topic,
        replay_file=str(path),
        replay_from=from_time,
        replay_speed=0,
        metrics_port=0,
    )
    result = run_replay(settings)
    assert result.failed == 0 and result.undelivered == 0, result
    return result.published


def produce(bootstrap: str, topic: str, ticks: list[Tick]) -> list[tuple[bytes, bytes]]:
    """Publish `ticks` in order with the contract's encoding; the (key, value) pairs sent."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    sent = []
    for tick in ticks:
        key, value = encode(tick)
        producer.produce(topic, key=key, value=value)
        sent.append((key, value))
    assert producer.flush(60) == 0
    return sent


def scored(reply: object) -> list[tuple[bytes, float]]:
    """A `withscores=True` range reply of a client without `decode_responses`: (member, score)
    pairs. redis-py types every range reply as one union over those options."""
    return cast("list[tuple[bytes, float]]", reply)


def with_db(redis_url: str, db: int) -> str:
    """The same server, another database number."""
    base, _, _ = redis_url.rpartition("/")
    return f"{base}/{db}"


def dataflow_env(
    bootstrap: str, topic: str, dlq: str, redis_url: str, **extra: str
) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TICKS_TOPIC": topic,
        "DLQ_TOPIC": dlq,
        "REDIS_URL": redis_url,
        "BOUNDED": "true",
        "METRICS_PORT": "0",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def run_bounded(
    env: dict[str, str], processes: int, log_dir: Path, timeout_s: float = 300, workers: int = 1
) -> None:
    """Run the dataflow to the end of the topic; fail with the processes' logs otherwise."""
    cluster = LocalCluster(env, processes=processes, workers_per_process=workers, log_dir=log_dir)
    with cluster:
        codes = cluster.wait(timeout_s)
        assert codes == [0] * processes, cluster.log_tail()


def history_window(
    client: redis.Redis, spec: str, figure: str, end_ms: int
) -> tuple[list[tuple[str, float]], dict[str, float]]:
    """(leaders best first, every symbol's figure) of one window from the history keys."""
    end_s = end_ms // 1000
    leaders = scored(client.zrevrange(f"history:leaders:{spec}:{end_s}", 0, -1, withscores=True))
    figures = scored(client.zrange(f"history:{figure}:{end_s}", 0, -1, withscores=True))
    return (
        [(name.decode(), score) for name, score in leaders],
        {name.decode(): score for name, score in figures},
    )


def figure_key(spec: str) -> str:
    return f"max_price:{spec.removesuffix('_max')}" if spec.endswith("_max") else f"means:{spec}"


def history_ends(client: redis.Redis, spec: str) -> set[int]:
    """Window ends (ms) that have a leaders history key for `spec`."""
    prefix = f"history:leaders:{spec}:"
    return {int(key.decode()[len(prefix) :]) * 1000 for key in client.scan_iter(f"{prefix}*")}


def dump_state(client: redis.Redis) -> dict[str, object]:
    """Every key's value (not its TTL), to compare two runs' final Redis state."""
    state: dict[str, object] = {}
    for key in client.scan_iter("*"):
        kind = cast(bytes, client.type(key)).decode()  # a client without decode_responses
        name = key.decode()
        if kind == "zset":
            state[name] = client.zrange(key, 0, -1, withscores=True)
        elif kind == "hash":
            state[name] = dict(sorted(client.hgetall(key).items()))
        else:
            state[name] = client.get(key)
    return state


def expected_scores(window: OracleWindow, score: str) -> dict[str, float]:
    return {symbol: getattr(row, score) for symbol, row in window.rows.items()}


def ends_of(windows: Iterable[tuple[str, int]], spec: str) -> set[int]:
    return {end for name, end in windows if name == spec}


def assert_window_in_history(
    client: redis.Redis, spec: WindowSpec, want: OracleWindow, end_ms: int
) -> None:
    """The window of `spec` ending at `end_ms` in Redis history equals the oracle's `want`:
    the same leaders and every symbol's score."""
    from tests.dataflows.leaders.compare import assert_same_leaders, close

    leaders, figures = history_window(client, spec.name, figure_key(spec.name), end_ms)
    where = f"{spec.name}@{end_ms}"
    assert_same_leaders(where, leaders, want, spec.score.value)
    wanted = expected_scores(want, spec.score.value)
    assert sorted(figures) == sorted(wanted), where
    assert all(close(figures[s], wanted[s]) for s in wanted), where


def assert_history_matches(
    client: redis.Redis,
    oracle: dict[tuple[str, int], OracleWindow],
    specs: Iterable[WindowSpec],
) -> None:
    """Every window in Redis history equals the oracle's, and no oracle window is missing
    (no window end skipped, none extra); the latest keys hold the oracle's last window."""
    for spec in specs:
        want_ends = ends_of(oracle, spec.name)
        got_ends = history_ends(client, spec.name)
        assert got_ends == want_ends, (
            f"{spec.name}: missing {sorted(want_ends - got_ends)[:5]}, "
            f"extra {sorted(got_ends - want_ends)[:5]}"
        )
        for end_ms in sorted(want_ends):
            assert_window_in_history(client, spec, oracle[(spec.name, end_ms)], end_ms)
        meta = client.hgetall(f"window:{spec.name}")
        assert int(meta[b"end"]) * 1000 == max(want_ends), spec.name
