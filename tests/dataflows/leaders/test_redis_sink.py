"""The Redis sink against a real redis-server: what one window writes, ordering, idempotence,
stale symbols, and retrying through a Redis outage."""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
import redis
from prometheus_client import REGISTRY
from redis.backoff import NoBackoff
from redis.retry import Retry

from dataflows.leaders.panes import Figures
from dataflows.leaders.ranking import RankedWindow
from dataflows.leaders.redis_sink import (
    FIGURE_NAMES,
    LeaderboardWriter,
    distinct_spec_runs,
    figures_calls,
    flat_strings,
)
from stockstream.embedded.redis_server import RedisServer
from stockstream.metrics import REDIS_ERRORS
from stockstream.ticks import format_ts
from tests.dataflows.leaders.pipeline import scored

pytestmark = pytest.mark.integration

HISTORY_TTL_S = 3600
END_MS = 1_381_152_660_000  # 2013-10-07T13:31:00Z
SLIDE_MS = 10_000


def fig(
    symbol: str,
    mean: float,
    *,
    high: float | None = None,
    gain_pct: float = 0.0,
    vwap: float | None = None,
    count: int = 3,
) -> Figures:
    """One symbol's figures; only `mean` (and `max` for max specs) matter to the ranking."""
    high = mean * 1.01 if high is None else high
    return Figures(
        symbol=symbol,
        count=count,
        mean=mean,
        min=mean * 0.99,
        max=high,
        first=mean * 0.995,
        last=mean * 1.005,
        vwap=vwap,
        gain_pct=gain_pct,
        volatility=0.0125,
    )


def window(
    rows: list[Figures],
    *,
    spec: str = "1m",
    end_ms: int = END_MS,
    length_s: int = 60,
    score: str = "mean",
    partial: bool = False,
    top_n: int = 3,
) -> RankedWindow:
    """A ranked window over `rows`: leaders by score descending, then symbol ascending."""
    ranked = sorted(rows, key=lambda row: (-row.score(score), row.symbol))[:top_n]
    return RankedWindow(
        spec=spec,
        score=score,
        length_s=length_s,
        end_ms=end_ms,
        partial=partial,
        leaders=tuple((row.symbol, row.score(score)) for row in ranked),
        rows=tuple(sorted(rows, key=lambda row: row.symbol)),
        closed_at_s=time.time(),
    )


def dump(client: redis.Redis, pattern: str = "*") -> dict[bytes, Any]:
    """Every key matching `pattern` with its type and whole value (TTLs left out)."""
    state: dict[bytes, Any] = {}
    for key in sorted(client.scan_iter(match=pattern)):
        kind = client.type(key)
        if kind == b"zset":
            value: Any = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"hash":
            value = client.hgetall(key)
        elif kind == b"string":
            value = client.get(key)
        else:
            raise AssertionError(f"unexpected {kind!r} key {key!r}")
        state[key] = (kind, value)
    return state


def latest_state(client: redis.Redis) -> dict[bytes, Any]:
    """Every key except the per-window history."""
    return {k: v for k, v in dump(client).items() if not k.startswith(b"history:")}


def figure_fields(row: Figures, spec: str, end_ms: int) -> dict[bytes, bytes]:
    """The `figures:<SYMBOL>` fields one spec writes for one row."""
    fields = {
        f"{spec}.{name}".encode(): orjson.dumps(getattr(row, name))
        for name in FIGURE_NAMES
        if getattr(row, name) is not None
    }
    fields[f"{spec}.window_end".encode()] = str(end_ms // 1000).encode()
    return fields


def fast_client(url: str) -> redis.Redis:
    """A client with short timeouts and no retries of its own: the writer must retry."""
    return redis.Redis.from_url(
        url, socket_timeout=0.5, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )


@pytest.fixture
def writer(redis_client: redis.Redis, redis_url: str) -> Iterator[LeaderboardWriter]:
    """A writer on the (flushed) session Redis."""
    client = fast_client(redis_url)
    try:
        yield LeaderboardWriter(client, history_ttl_s=HISTORY_TTL_S, retry_max_s=0.2)
    finally:
        client.close()


# --------------------------------------------------------------------------------------
# What one window writes

ROWS = [
    fig("AAA", 10.0, gain_pct=1.5, vwap=10.01),
    fig("BBB", 0.1 + 0.2, gain_pct=-0.25),
    fig("CCC", 31.52, gain_pct=0.1 + 0.7, vwap=31.5),
    fig("DDD", 2.0 / 3.0, gain_pct=0.0),
    fig("EEE", 1e-7, gain_pct=-100.0 / 3.0),
]


def test_mean_window_keys(writer: LeaderboardWriter, redis_client: redis.Redis) -> None:
    """A mean window writes leaders, window, means, gainers, figures and history keys,
    numbers at full precision."""
    ranked = window(ROWS, partial=True)
    end_s = END_MS // 1000

    assert writer.write(ranked) is True

    assert redis_client.zrevrange("leaders:1m", 0, 2, withscores=True) == [
        (b"CCC", 31.52),
        (b"AAA", 10.0),
        (b"DDD", 2.0 / 3.0),
    ]
    assert redis_client.zcard("leaders:1m") == 3
    assert redis_client.hgetall("window:1m") == {
        b"end": str(end_s).encode(),
        b"start": str(end_s - 60).encode(),
        b"end_iso": format_ts(END_MS).encode(),
        b"start_iso": format_ts(END_MS - 60_000).encode(),
        b"partial": b"1",
        b"symbols": b"5",
    }
    means = {row.symbol.encode(): row.mean for row in ROWS}
    gains = {row.symbol.encode(): row.gain_pct for row in ROWS}
    assert dict(scored(redis_client.zrange("means:1m", 0, -1, withscores=True))) == means
    assert dict(scored(redis_client.zrange("gainers:1m", 0, -1, withscores=True))) == gains
    assert redis_client.zscore("means:1m", "BBB") == 0.1 + 0.2
    for row in ROWS:
        assert redis_client.hgetall(f"figures:{row.symbol}") == figure_fields(row, "1m", END_MS)
    assert b"1m.vwap" not in redis_client.hgetall("figures:BBB")

    history = {
        f"history:leaders:1m:{end_s}": redis_client.zrange("leaders:1m", 0, -1, withscores=True),
        f"history:means:1m:{end_s}": redis_client.zrange("means:1m", 0, -1, withscores=True),
        f"history:gainers:1m:{end_s}": redis_client.zrange("gainers:1m", 0, -1, withscores=True),
    }
    for key, expected in history.items():
        assert redis_client.zrange(key, 0, -1, withscores=True) == expected, key
        assert 0 < redis_client.ttl(key) <= HISTORY_TTL_S, key
    for key in ("leaders:1m", "means:1m", "gainers:1m", "window:1m", "figures:AAA"):
        assert redis_client.ttl(key) == -1, f"{key} must not expire"


@pytest.mark.parametrize(
    ("mean", "gain_pct"),
    [
        (0.1 + 0.2, -0.0),
        (1e-7, 1e22),
        (5e-324, -1e-300),  # the smallest subnormal
        (1.7976931348623157e308, 2.0 / 3.0),  # the largest double
        (123456789.12345679, -100.0 / 3.0),
        (float("inf"), 0.0),  # a mean of prices near the largest double overflows
        (2.0, float("-inf")),
    ],
)
def test_numbers_reach_redis_as_their_shortest_exact_text(
    writer: LeaderboardWriter, redis_client: redis.Redis, mean: float, gain_pct: float
) -> None:
    """Scores and figures read back as the very doubles written, as the shortest text that
    does so (never longer than Python's repr); infinities stay infinities, not absences."""
    row = fig("AAA", mean, gain_pct=gain_pct, vwap=mean)
    assert writer.write(window([row])) is True

    assert redis_client.zscore("means:1m", "AAA") == mean
    assert redis_client.zscore("gainers:1m", "AAA") == gain_pct
    fields = redis_client.hgetall("figures:AAA")
    for name in FIGURE_NAMES:
        value = getattr(row, name)
        raw = fields[f"1m.{name}".encode()]
        assert isinstance(raw, bytes)
        text = raw.decode()
        assert float(text) == value and math.copysign(1, float(text)) == math.copysign(1, value)
        assert len(text) <= len(repr(value)), (name, text)


@pytest.mark.parametrize("symbols", [1, 128, 129, 1000, 1001, 2500])
def test_windows_of_any_size_write_every_member_exactly(
    writer: LeaderboardWriter, redis_client: redis.Redis, symbols: int
) -> None:
    """Around Redis' listpack limit (128 members: larger sets start as a skiplist, by way of a
    placeholder member), the script's ZADD chunks (1,000 members) and the figures calls
    (`FIGURES_ROWS_PER_CALL`, 1,000 symbols): every symbol's score is written exactly, the
    placeholder never stays, and the next, smaller window's stale symbols are found."""
    rows = [fig(f"S{i:05d}", 1.0 + i / 7.0, gain_pct=i / 3.0) for i in range(symbols)]
    end_s = END_MS // 1000

    assert writer.write(window(rows)) is True

    means = {row.symbol.encode(): row.mean for row in rows}
    for key in ("means:1m", f"history:means:1m:{end_s}"):
        assert dict(scored(redis_client.zrange(key, 0, -1, withscores=True))) == means, key
    gains = {row.symbol.encode(): row.gain_pct for row in rows}
    assert dict(scored(redis_client.zrange("gainers:1m", 0, -1, withscores=True))) == gains
    assert redis_client.hget("window:1m", "symbols") == str(symbols).encode()
    assert redis_client.hgetall(f"figures:{rows[-1].symbol}") == figure_fields(
        rows[-1], "1m", END_MS
    )

    kept = rows[: (symbols + 1) // 2]
    assert writer.write(window(kept, end_ms=END_MS + SLIDE_MS)) is True
    assert redis_client.zcard("means:1m") == len(kept)
    assert redis_client.hgetall(f"figures:{rows[0].symbol}") == figure_fields(
        rows[0], "1m", END_MS + SLIDE_MS
    )
    for gone in rows[len(kept) :]:
        assert redis_client.exists(f"figures:{gone.symbol}") == 0, gone.symbol


def test_max_window_keys(writer: LeaderboardWriter, redis_client: redis.Redis) -> None:
    """A `max` spec ranks by max price into `max_price:<len>` and writes no gainers."""
    rows = [
        fig("AAA", 10.0, high=12.5),
        fig("BBB", 11.0, high=11.5),
        fig("CCC", 1.0, high=0.1 + 0.2),
    ]
    ranked = window(rows, spec="5m_max", length_s=300, score="max", end_ms=END_MS - 60_000)
    end_s = ranked.end_ms // 1000

    assert writer.write(ranked) is True

    assert redis_client.zrevrange("leaders:5m_max", 0, -1, withscores=True) == [
        (b"AAA", 12.5),
        (b"BBB", 11.5),
        (b"CCC", 0.1 + 0.2),
    ]
    assert dict(scored(redis_client.zrange("max_price:5m", 0, -1, withscores=True))) == {
        b"AAA": 12.5,
        b"BBB": 11.5,
        b"CCC": 0.1 + 0.2,
    }
    assert redis_client.hget("window:5m_max", "start") == str(end_s - 300).encode()
    assert redis_client.hget("window:5m_max", "partial") == b"0"
    assert redis_client.hget("figures:AAA", "5m_max.max") == b"12.5"
    assert redis_client.hget("figures:AAA", "5m_max.window_end") == str(end_s).encode()
    for key in (f"history:leaders:5m_max:{end_s}", f"history:max_price:5m:{end_s}"):
        assert 0 < redis_client.ttl(key) <= HISTORY_TTL_S, key
    assert list(redis_client.scan_iter(match="*gainers*")) == []
    assert list(redis_client.scan_iter(match="means:*")) == []


# --------------------------------------------------------------------------------------
# Ordering, idempotence, stale symbols


def test_older_window_does_not_overwrite_newer(
    writer: LeaderboardWriter, redis_client: redis.Redis
) -> None:
    """An older window arriving late writes only its history; the latest keys stay."""
    newer = window([fig("AAA", 10.0), fig("BBB", 20.0)], end_ms=END_MS)
    older = window(
        [fig("AAA", 1.0, gain_pct=5.0), fig("CCC", 30.0, vwap=29.0)], end_ms=END_MS - SLIDE_MS
    )
    assert writer.write(newer) is True
    before = latest_state(redis_client)

    assert writer.write(older) is False

    assert latest_state(redis_client) == before
    old_s = older.end_ms // 1000
    assert redis_client.zrange(f"history:means:1m:{old_s}", 0, -1, withscores=True) == [
        (b"AAA", 1.0),
        (b"CCC", 30.0),
    ]
    assert redis_client.zrange(f"history:gainers:1m:{old_s}", 0, -1) == [b"CCC", b"AAA"]
    assert redis_client.zrevrange(f"history:leaders:1m:{old_s}", 0, -1) == [b"CCC", b"AAA"]
    for kind in ("leaders", "means", "gainers"):
        assert 0 < redis_client.ttl(f"history:{kind}:1m:{old_s}") <= HISTORY_TTL_S


@pytest.mark.parametrize(
    "ranked",
    [
        pytest.param(window(ROWS), id="mean"),
        pytest.param(
            window(ROWS, spec="5m_max", length_s=300, score="max", partial=True), id="max"
        ),
    ],
)
def test_rewrite_is_idempotent(
    writer: LeaderboardWriter, redis_client: redis.Redis, ranked: RankedWindow
) -> None:
    """Writing the same window again (a replay after recovery) leaves Redis identical."""
    assert writer.write(ranked) is True
    first = dump(redis_client)

    assert writer.write(ranked) is True

    assert dump(redis_client) == first


def test_equal_end_window_replaces_latest(
    writer: LeaderboardWriter, redis_client: redis.Redis
) -> None:
    """A corrected window with the same end (a late partition) replaces the latest one."""
    first = window([fig("AAA", 10.0)])
    corrected = window([fig("AAA", 10.0), fig("BBB", 20.0)])
    writer.write(first)

    assert writer.write(corrected) is True

    assert redis_client.zrevrange("leaders:1m", 0, -1) == [b"BBB", b"AAA"]
    assert redis_client.hget("window:1m", "symbols") == b"2"


def test_vanished_symbol_loses_only_its_spec_figures(
    writer: LeaderboardWriter, redis_client: redis.Redis
) -> None:
    """A symbol absent from window N+1 leaves the spec's sets and `N.*` figures, and keeps
    the figures of other specs."""
    five = window([fig("CCC", 7.0)], spec="5m", length_s=300)
    first = window([fig("AAA", 10.0), fig("BBB", 20.0), fig("CCC", 30.0, vwap=30.5)])
    second_rows = [fig("AAA", 11.0), fig("BBB", 19.0)]
    second = window(second_rows, end_ms=END_MS + SLIDE_MS)
    writer.write(five)
    writer.write(first)
    assert b"1m.mean" in redis_client.hgetall("figures:CCC")

    assert writer.write(second) is True

    assert redis_client.zrange("means:1m", 0, -1) == [b"AAA", b"BBB"]
    assert redis_client.zrange("gainers:1m", 0, -1) == [b"AAA", b"BBB"]
    assert redis_client.zrevrange("leaders:1m", 0, -1) == [b"BBB", b"AAA"]
    assert redis_client.hgetall("figures:CCC") == figure_fields(five.rows[0], "5m", END_MS)
    for row in second_rows:
        expected = figure_fields(row, "1m", second.end_ms)
        assert redis_client.hgetall(f"figures:{row.symbol}") == expected
    assert redis_client.zrange("means:5m", 0, -1) == [b"CCC"]


def test_figure_missing_in_next_window_is_removed(
    writer: LeaderboardWriter, redis_client: redis.Redis
) -> None:
    """A figure a symbol had in window N but not in N+1 (vwap without sizes) is removed, so
    `figures:<SYM>` never mixes two windows."""
    writer.write(window([fig("AAA", 10.0, vwap=10.2)]))
    later = fig("AAA", 11.0, vwap=None)

    writer.write(window([later], end_ms=END_MS + SLIDE_MS))

    assert redis_client.hgetall("figures:AAA") == figure_fields(later, "1m", END_MS + SLIDE_MS)


# --------------------------------------------------------------------------------------
# Connection loss


@contextmanager
def private_or_session(server: object) -> Iterator[RedisServer]:
    """The session's embedded server, or a private one when the session Redis is external
    (a test must not stop a server it does not own)."""
    if isinstance(server, RedisServer):
        yield server
        return
    with RedisServer() as own:
        yield own


def test_write_retries_until_redis_is_back(redis_server: object) -> None:
    """With Redis down, `write` keeps retrying (counting errors) instead of failing or
    skipping the window; once Redis is back the window is written."""
    with private_or_session(redis_server) as server:
        client = fast_client(server.url)
        writer = LeaderboardWriter(client, history_ttl_s=HISTORY_TTL_S, retry_max_s=0.2)
        try:
            client.flushdb()
            writer.write(window([fig("OLD", 1.0)], end_ms=END_MS - SLIDE_MS))  # pool connected
            ranked = window(ROWS)
            results: list[bool] = []
            failures: list[BaseException] = []

            def run() -> None:
                try:
                    results.append(writer.write(ranked))
                except BaseException as exc:  # reported by the test
                    failures.append(exc)

            errors_before = REDIS_ERRORS._value.get()
            thread = threading.Thread(target=run, name="redis-writer", daemon=True)
            server.stop()
            try:
                thread.start()
                # Three failed attempts, however slowly a loaded machine runs the writer
                # thread (a fixed sleep before counting was a race); all the while it neither
                # fails nor gives up.
                deadline = time.monotonic() + 60
                while REDIS_ERRORS._value.get() < errors_before + 3:
                    assert failures == []
                    assert thread.is_alive(), f"write gave up while Redis was down: {results}"
                    assert time.monotonic() < deadline, "no three retries in 60 s"
                    time.sleep(0.05)
                assert failures == [] and thread.is_alive(), results
            finally:
                server.start()
            thread.join(timeout=15)
            assert not thread.is_alive(), "write did not finish after Redis came back"
            assert failures == [] and results == [True]
        finally:
            client.close()

        check = server.client()
        try:
            # The restarted server is empty: everything there is this window's write.
            assert check.zrevrange("leaders:1m", 0, -1, withscores=True) == [
                (b"CCC", 31.52),
                (b"AAA", 10.0),
                (b"DDD", 2.0 / 3.0),
            ]
            assert check.zcard("means:1m") == len(ROWS)
            assert check.hget("window:1m", "end") == str(END_MS // 1000).encode()
            assert check.exists(f"history:leaders:1m:{END_MS // 1000}") == 1
        finally:
            check.close()


def test_password_in_redis_url() -> None:
    """`REDIS_URL` may carry a password; the sink builds its client from the URL alone."""
    from dataflows.leaders.redis_sink import RedisLeaderboardSink

    with RedisServer(password="s3cr:t/pw") as server:
        sink = RedisLeaderboardSink(server.url, HISTORY_TTL_S, retry_max_s=0.2)
        partition = sink.build("leaders_out", 0, 1)
        partition.write_batch([window([fig("AAA", 2.0), fig("BBB", 1.0)])])
        partition.close()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=server.port, retry=Retry(NoBackoff(), 0)).ping()
        client = redis.Redis.from_url(server.url)
        assert client.zrevrange("leaders:1m", 0, -1) == [b"AAA", b"BBB"]


def test_a_batch_leaves_the_state_of_its_windows_written_one_by_one(
    writer: LeaderboardWriter, redis_client: redis.Redis
) -> None:
    """The specs closing at one end (and an older window) written in one pipelined batch
    leave Redis as writing them in turn does, and say which became the latest."""
    batch = [
        window([fig("AAA", 10.0), fig("BBB", 20.0), fig("CCC", 30.0, vwap=30.5)]),
        window([fig("AAA", 9.0), fig("DDD", 4.0)], spec="5m", length_s=300),
        window(ROWS, spec="5m_max", length_s=300, score="max"),
        window([fig("AAA", 11.0)], end_ms=END_MS + SLIDE_MS),  # 1m again, newer: stale CCC
        window([fig("EEE", 1.0)], spec="5m", length_s=300, end_ms=END_MS - SLIDE_MS),  # older
    ]
    for ranked in batch:
        writer.write(ranked)
    one_by_one = dump(redis_client)
    redis_client.flushdb()

    assert writer.write_many(batch) == [True, True, True, True, False]

    assert dump(redis_client) == one_by_one


def phase_counts() -> dict[str, float]:
    return {
        phase: REGISTRY.get_sample_value("stockstream_window_phase_seconds_count", {"phase": phase})
        or 0.0
        for phase in ("to_sink", "redis_windows", "redis_figures_history")
    }


def test_a_batch_times_its_phases_once_and_figures_only_for_latest_windows(
    writer: LeaderboardWriter,
) -> None:
    """Each window's wait for the sink is observed, the batch's round trips once each; a batch
    with no latest window writes (and times) no figures."""
    newer = [window([fig("AAA", 10.0)]), window([fig("AAA", 9.0)], spec="5m", length_s=300)]
    older = [window([fig("BBB", 1.0)], end_ms=END_MS - SLIDE_MS)]
    waited_s = 2.0
    newer = [dataclasses.replace(w, closed_at_s=time.time() - waited_s) for w in newer]
    before = phase_counts()
    sum_before = (
        REGISTRY.get_sample_value("stockstream_window_phase_seconds_sum", {"phase": "to_sink"})
        or 0.0
    )

    assert writer.write_many(newer) == [True, True]
    assert writer.write_many(older) == [False]

    after = phase_counts()
    assert after["to_sink"] - before["to_sink"] == 3
    assert after["redis_windows"] - before["redis_windows"] == 2
    assert after["redis_figures_history"] - before["redis_figures_history"] == 1
    waited = (
        REGISTRY.get_sample_value("stockstream_window_phase_seconds_sum", {"phase": "to_sink"})
        or 0.0
    ) - sum_before
    assert 2 * waited_s <= waited < 2 * waited_s + 60


@pytest.mark.parametrize(
    ("specs", "runs"),
    [
        ([], []),
        (["1m"], [[0]]),
        (["1m", "5m", "15m", "5m_max"], [[0, 1, 2, 3]]),
        (["1m", "5m", "1m", "5m"], [[0, 1], [2, 3]]),  # a replay: two ends in one batch
        (["1m", "1m", "1m"], [[0], [1], [2]]),
        (["1m", "5m", "5m", "1m"], [[0, 1], [2, 3]]),
    ],
)
def test_figures_go_in_runs_of_distinct_specs_in_order(
    specs: list[str], runs: list[list[int]]
) -> None:
    windows = [window([fig("AAA", 1.0)], spec=spec) for spec in specs]
    assert distinct_spec_runs(windows) == runs


def test_windows_with_different_symbols_share_one_figures_call(
    writer: LeaderboardWriter, redis_client: redis.Redis
) -> None:
    """One end's specs hold different symbols (a 15-minute window remembers more): each
    symbol's hash gets the figures of the windows that hold it, and only those."""
    one = window([fig("AAA", 1.0), fig("CCC", 3.0)])
    five = window([fig("AAA", 1.5), fig("BBB", 2.0, vwap=2.0)], spec="5m", length_s=300)
    assert writer.write_many([one, five]) == [True, True]

    assert redis_client.hgetall("figures:AAA") == {
        **figure_fields(one.rows[0], "1m", END_MS),
        **figure_fields(five.rows[0], "5m", END_MS),
    }
    assert redis_client.hgetall("figures:BBB") == figure_fields(five.rows[1], "5m", END_MS)
    assert redis_client.hgetall("figures:CCC") == figure_fields(one.rows[1], "1m", END_MS)


@pytest.mark.parametrize(
    ("symbols", "per_call", "calls"),
    [
        (1, 2, 1),
        (2, 2, 1),
        (3, 2, 2),
        (5, 2, 3),
        (1000, 1000, 1),
        (1001, 1000, 2),
    ],
)
def test_figures_calls_split_the_rows_and_remove_stale_symbols_once(
    symbols: int, per_call: int, calls: int
) -> None:
    rows = [fig(f"S{i:05d}", float(i)) for i in range(symbols)]
    windows = [window(rows), window(rows, spec="5m", length_s=300)]
    stale = [["GONE"], []]

    split = figures_calls(windows, stale, rows_per_call=per_call)

    assert len(split) == calls
    assert [orjson.loads(meta)["stale"] for meta, _, _ in split] == [stale] + [[[], []]] * (
        calls - 1
    )
    assert {meta for meta, _, _ in split[1:]} <= {split[-1][0]}
    whole = orjson.loads(figures_calls(windows, stale, rows_per_call=symbols)[0][2])
    assert [value for _, _, part in split for value in orjson.loads(part)] == whole
    assert len(whole) == symbols * (1 + 2 * len(FIGURE_NAMES))


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], []),
        ([(1.5, "AAA")], ["1.5", "AAA"]),
        ([(None, "BBB", (2, False))], ["null", "BBB", "2", "false"]),
        ([(0.1 + 0.2, "A.B-C:D_E")], ["0.30000000000000004", "A.B-C:D_E"]),
        ([(1e-7, "null")], ["1e-7", "null"]),  # a symbol named null stays a symbol
        ([("S", (float("inf"), float("-inf"), None))], ["S", "inf", "-inf", "null"]),
    ],
)
def test_flat_strings(items: list[tuple[object, ...]], expected: list[str]) -> None:
    assert orjson.loads(flat_strings(items)) == expected
