"""Redis sink: ranked windows written per second with `LeaderboardWriter` (one atomic Lua
script per window: history sets, latest sets, metadata, per-symbol figure hashes) against
plain pipelined ZADDs of the same leaders and scores (no atomic replace, no history, no
figure hashes) -- the cost of the atomic replace.

    .venv/bin/python -m bench.redis_sink [--symbols 50,500] [--windows 300]
"""

from __future__ import annotations

import argparse

import redis

from bench.common import fmt_rate, print_header, rate, servers, timed, write_results
from dataflows.leaders.panes import Figures
from dataflows.leaders.ranking import RankedWindow
from dataflows.leaders.redis_sink import LeaderboardWriter

END_MS = 1_381_152_600_000


def window(n_symbols: int, index: int) -> RankedWindow:
    rows = tuple(
        Figures(
            f"S{j:05d}",
            40,
            30.0 + j * 0.01 + index * 1e-4,
            29.0,
            31.0 + j * 0.01,
            30.0,
            30.5,
            30.2,
            1.5,
            0.01,
        )
        for j in range(n_symbols)
    )
    leaders = tuple((r.symbol, r.mean) for r in sorted(rows, key=lambda r: -r.mean)[:3])
    return RankedWindow("1m", "mean", 60, END_MS + index * 10_000, False, leaders, rows, 0.0)


def plain_zadds(client: redis.Redis, win: RankedWindow) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.zadd("plain:leaders:1m", {s: v for s, v in win.leaders})
    pipe.zadd("plain:means:1m", {r.symbol: r.mean for r in win.rows})
    pipe.zadd("plain:gainers:1m", {r.symbol: r.gain_pct for r in win.rows})
    pipe.execute()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", default="50,500,10000")
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.symbols.split(",")]
    print_header("redis_sink", {"symbols_per_window": counts, "windows": args.windows})
    rows = []
    with servers(need_kafka=False) as (_, redis_url):
        client = redis.Redis.from_url(redis_url)
        writer = LeaderboardWriter(client, history_ttl_s=3600, retry_max_s=1.0)
        for n_symbols in counts:
            n = max(5, args.windows * 50 // max(50, n_symbols))
            windows = [window(n_symbols, i) for i in range(n)]
            client.flushdb()
            writer.write(windows[0])
            with timed() as lua:
                for win in windows:
                    writer.write(win)
            with timed() as plain:
                for win in windows:
                    plain_zadds(client, win)
            lua_rate, plain_rate = rate(n, lua.seconds), rate(n, plain.seconds)
            cost = plain_rate / lua_rate
            print(
                f"symbols={n_symbols}: atomic script {fmt_rate(lua_rate)} windows/s "
                f"({lua.seconds / n * 1000:.2f} ms each), pipelined ZADDs {fmt_rate(plain_rate)}"
                f" windows/s ({plain.seconds / n * 1000:.2f} ms); ratio plain/atomic "
                f"{cost:.1f}x",
                flush=True,
            )
            rows.append(
                (
                    f"{n_symbols:,}",
                    str(n),
                    fmt_rate(lua_rate),
                    f"{lua.seconds / n * 1000:.2f}",
                    fmt_rate(plain_rate),
                    f"{plain.seconds / n * 1000:.2f}",
                    f"{cost:.1f}x",
                )
            )
    if not args.no_write:
        write_results(
            "redis_sink",
            rows,
            (
                "symbols/window",
                "windows",
                "atomic script windows/s",
                "ms/window",
                "plain ZADD pipeline windows/s",
                "ms/window",
                "cost of atomic (x)",
            ),
            notes=[
                "Wall time, client and redis-server on the same machine. The script also "
                "writes history sets, window metadata and each symbol's figure hash, which "
                "the plain pipeline does not."
            ],
        )


if __name__ == "__main__":
    main()
