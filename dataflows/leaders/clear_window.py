"""`stockstream-leaders clear-window N`: remove a bad window that became the latest.

Should a window ending absurdly far ahead ever land in Redis (the far-future guard keeps them
out; an older release or a hand-written key did not), `leaders:N` and the other latest keys
stop changing, because only a window not older than `window:N`'s `end` may replace them. This
command deletes the latest keys of window spec N (`leaders:N`, `window:N`, `means:N` and
`gainers:N`, or `max_price:<len>` for `<len>_max`), that window's `history:*` keys, and the
`N.*` fields of every `figures:<SYMBOL>` hash that came from it. The next window the dataflow
writes then becomes the latest.

    stockstream-leaders clear-window 1m                # whatever window is the latest
    stockstream-leaders clear-window 1m --end 4102444800 --yes   # only if it ends there
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import redis

from dataflows.leaders.redis_sink import FIGURE_NAMES
from dataflows.leaders.show import RedisClientSettings, connect
from stockstream.cli import OneLineArgumentParser, settings_help

PROG = "stockstream-leaders clear-window"


@dataclass(frozen=True)
class Cleared:
    """What was removed: the window's end (None: there was no latest window) and key counts."""

    end_s: int | None
    keys: int
    figure_hashes: int


def latest_keys(spec: str) -> tuple[str, ...]:
    """The latest-window keys of spec `spec` (`1m`, `5m_max`, ...)."""
    if spec.endswith("_max"):
        return (f"window:{spec}", f"leaders:{spec}", f"max_price:{spec.removesuffix('_max')}")
    return (f"window:{spec}", f"leaders:{spec}", f"means:{spec}", f"gainers:{spec}")


def history_keys(spec: str, end_s: int) -> tuple[str, ...]:
    """The history keys of the window of `spec` ending at `end_s`."""
    return tuple(f"history:{name}:{end_s}" for name in latest_keys(spec)[1:])


def clear_window(client: redis.Redis, spec: str, expected_end_s: int | None = None) -> Cleared:
    """Delete spec's latest window (only if it ends at `expected_end_s`, when given)."""
    raw_end = client.hget(f"window:{spec}", "end")
    if raw_end is None:
        return Cleared(None, 0, 0)
    end_s = int(raw_end)
    if expected_end_s is not None and end_s != expected_end_s:
        raise ValueError(f"window:{spec} ends at {end_s}, not {expected_end_s}: nothing cleared")
    figure_fields = [f"{spec}.{name}" for name in (*FIGURE_NAMES, "window_end")]
    stale = []
    for key in client.scan_iter(match="figures:*", count=500):
        if client.hget(key, f"{spec}.window_end") == raw_end:
            stale.append(key)
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(*latest_keys(spec), *history_keys(spec, end_s))
        for key in stale:
            pipe.hdel(key, *figure_fields)
        deleted = pipe.execute()[0]
    return Cleared(end_s, int(deleted), len(stale))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineArgumentParser(
        prog=PROG,
        description=__doc__,
        epilog=settings_help(RedisClientSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("window", help="window spec name: 1m, 5m, 15m, 5m_max")
    parser.add_argument(
        "--end", type=int, metavar="EPOCH_S", help="clear only if the latest window ends at EPOCH_S"
    )
    parser.add_argument("--redis-url", help="Redis URL instead of REDIS_URL")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    args = parser.parse_args(argv)
    client = connect(PROG, args.redis_url)
    try:
        if not args.yes:
            end = client.hget(f"window:{args.window}", "end")
            if end is None:
                print(f"window:{args.window} has no latest window: nothing to clear")
                return 0
            answer = input(f"clear the latest {args.window} window ending at {int(end)}? [y/N] ")
            if answer.strip().lower() != "y":
                print("nothing cleared")
                return 1
        cleared = clear_window(client, args.window, args.end)
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except redis.ConnectionError as exc:
        print(f"{PROG}: cannot reach Redis: {exc}", file=sys.stderr)
        return 2
    if cleared.end_s is None:
        print(f"window:{args.window} has no latest window: nothing to clear")
    else:
        print(
            f"cleared {args.window} window ending at {cleared.end_s}: {cleared.keys} keys, "
            f"{args.window}.* fields of {cleared.figure_hashes} figures hashes"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
