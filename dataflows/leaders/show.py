"""`stockstream-leaders`: the leaderboards in Redis as a readable table.

    stockstream-leaders                      # once
    stockstream-leaders --watch 1            # refresh every second until Ctrl-C
    REDIS_URL=redis://reader:PW@host:6379/0 stockstream-leaders --windows 1m,15m
    REDIS_URL=redis://:ADMIN_PW@host:6379/0 stockstream-leaders clear-window 1m

It only reads: log in as the read-only ACL user `reader` (see README "Redis users"), except
`clear-window`, which removes a bad latest window (see its --help) and needs the admin user.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import redis
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from stockstream.cli import OneLineArgumentParser, read_settings, settings_help
from stockstream.settings import RedisUrl

DEFAULT_WINDOWS = ("1m", "5m", "15m", "5m_max")
PROG = "stockstream-leaders"


class RedisClientSettings(BaseSettings):
    """Where `stockstream-leaders` (and its `clear-window`) find Redis."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    redis_url: RedisUrl = Field(
        "redis://127.0.0.1:6379/0",
        description="Redis with the password in the URL: the read-only user `reader` "
        "(clear-window: the admin); --redis-url replaces it.",
    )


def connect(prog: str, redis_url: str | None) -> redis.Redis:
    """A client of `redis_url` (`--redis-url`), else of REDIS_URL; a bad URL exits in one
    line."""
    overrides = {} if redis_url is None else {"redis_url": redis_url}
    settings = read_settings(RedisClientSettings, prog, **overrides)
    return redis.Redis.from_url(settings.redis_url, socket_timeout=5)


@dataclass(frozen=True)
class Leader:
    rank: int
    symbol: str
    score: float
    gain_pct: float | None
    volatility: float | None
    count: int | None


@dataclass(frozen=True)
class Board:
    window: str
    start_iso: str
    end_iso: str
    partial: bool
    symbols: int
    leaders: tuple[Leader, ...]


def _float(value: bytes | str | None) -> float | None:
    return None if value is None else float(value)


def read_board(client: redis.Redis, window: str) -> Board | None:
    """One window's leaderboard and metadata, read in one transaction (None before the first)."""
    with client.pipeline(transaction=True) as pipe:
        pipe.hgetall(f"window:{window}")
        pipe.zrevrange(f"leaders:{window}", 0, -1, withscores=True)
        meta, ranked = pipe.execute()
    if not meta:
        return None
    leaders = []
    for rank, (symbol, score) in enumerate(ranked, start=1):
        name = symbol.decode()
        fields = client.hmget(
            f"figures:{name}", f"{window}.gain_pct", f"{window}.volatility", f"{window}.count"
        )
        leaders.append(
            Leader(
                rank,
                name,
                score,
                _float(fields[0]),
                _float(fields[1]),
                None if fields[2] is None else int(fields[2]),
            )
        )
    return Board(
        window,
        meta[b"start_iso"].decode(),
        meta[b"end_iso"].decode(),
        meta[b"partial"] == b"1",
        int(meta[b"symbols"]),
        tuple(leaders),
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(boards: list[tuple[str, Board | None]]) -> str:
    """Plain-text tables, one per window."""
    lines = []
    for window, board in boards:
        score = "max price" if window.endswith("_max") else "mean"
        if board is None:
            lines += [f"{window}: no window closed yet", ""]
            continue
        flag = "  (partial)" if board.partial else ""
        lines.append(
            f"{window}  [{board.start_iso} .. {board.end_iso})  {board.symbols} symbols{flag}"
        )
        lines.append(
            f"  {'#':>2}  {'symbol':<10} {score:>12} {'gain %':>9} {'volatility':>11} {'ticks':>7}"
        )
        for leader in board.leaders:
            lines.append(
                f"  {leader.rank:>2}  {leader.symbol:<10} {leader.score:>12.4f} "
                f"{_fmt(leader.gain_pct, '>9.3f')} {_fmt(leader.volatility, '>11.6f')} "
                f"{_fmt(leader.count, '>7d')}"
            )
        lines.append("")
    return "\n".join(lines)


def snapshot(client: redis.Redis, windows: tuple[str, ...]) -> str:
    return render([(window, read_board(client, window)) for window in windows])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["clear-window"]:
        from dataflows.leaders import clear_window

        return clear_window.main(argv[1:])
    parser = OneLineArgumentParser(
        prog=PROG,
        description=__doc__,
        epilog=settings_help(RedisClientSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--redis-url", help="Redis URL instead of REDIS_URL")
    parser.add_argument(
        "--windows", default=",".join(DEFAULT_WINDOWS), help="comma-separated window names"
    )
    parser.add_argument(
        "--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C"
    )
    args = parser.parse_args(argv)
    client = connect(PROG, args.redis_url)
    windows = tuple(w.strip() for w in args.windows.split(",") if w.strip())
    try:
        if args.watch is None:
            print(snapshot(client, windows))
            return 0
        while True:
            print("\033[H\033[2J" + snapshot(client, windows), flush=True)
            time.sleep(args.watch)
    except redis.ConnectionError as exc:
        print(f"{PROG}: cannot reach Redis: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
