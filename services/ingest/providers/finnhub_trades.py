"""`finnhub_trades`: Finnhub's trade stream (`wss://ws.finnhub.io?token=KEY`).

After connecting, the client sends `{"type": "subscribe", "symbol": "AAPL"}` per symbol and
receives `{"type": "trade", "data": [{"s": "AAPL", "p": 261.7, "t": 1582641000123,
"v": 100, "c": [...]}]}` (t in ms) and keep-alive `{"type": "ping"}` messages. A connection
silent for `heartbeat_timeout_s` is considered dead. Every lost or failed connection is
counted; reconnects wait an exponential backoff (`initial * 2^attempt`, capped) with jitter
(a random 50-100 % of it), and resubscribe every symbol. The backoff restarts after a
connection that delivered a message.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from services.ingest.providers.base import ErrorCounts
from stockstream.metrics import INGEST_DISCONNECTS
from stockstream.ticks import Tick

log = logging.getLogger(__name__)

SOURCE = "finnhub:trade"
MAX_FUTURE_MS = 300_000


@dataclass
class Parsed:
    """What one websocket message holds: trades, and unusable parts as (kind, reason)."""

    ticks: list[Tick] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def _valid_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_trade(  # noqa: PLR0911 - one early return per rejection reason, in check order
    item: object, wanted: frozenset[str], now_ms: int
) -> Tick | tuple[str, str]:
    """One element of a trade message's `data` as a tick, or (kind, reason)."""
    if not isinstance(item, dict):
        return "malformed", f"trade is {type(item).__name__}"
    for name in ("s", "p", "t"):
        if item.get(name) is None:
            return "missing_field", f"trade without {name!r}"
    symbol, price, ts, size = item["s"], item["p"], item["t"], item.get("v")
    if not isinstance(symbol, str) or symbol not in wanted:
        return "unexpected_symbol", f"trade for {str(symbol)[:32]!r}"
    if not _valid_number(price) or price <= 0:
        return "bad_value", f"price {price!r}"[:64]
    if not _valid_number(ts) or ts <= 0 or ts != int(ts) or ts > now_ms + MAX_FUTURE_MS:
        return "bad_value", f"time {ts!r}"[:64]
    if size is not None and (not _valid_number(size) or size < 0):
        return "bad_value", f"volume {size!r}"[:64]
    return Tick(symbol, float(price), int(ts), None if size is None else float(size), SOURCE)


def parse_message(raw: str | bytes, wanted: frozenset[str], now_ms: int) -> Parsed:
    """The trades of one message (pings and empty trade lists give nothing)."""
    parsed = Parsed()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        parsed.errors.append(("malformed", f"invalid JSON: {str(exc)[:80]}"))
        return parsed
    kind = body.get("type") if isinstance(body, dict) else None
    if kind == "ping":
        return parsed
    if kind == "error":
        parsed.errors.append(("api_error", str(body.get("msg"))[:120]))
    elif kind != "trade":
        parsed.errors.append(("malformed", f"unexpected message type {str(kind)[:32]!r}"))
    elif not isinstance(body.get("data"), list):
        parsed.errors.append(("malformed", "trade message without a data list"))
    else:
        for item in body["data"]:
            result = parse_trade(item, wanted, now_ms)
            if isinstance(result, Tick):
                parsed.ticks.append(result)
            else:
                parsed.errors.append(result)
    return parsed


def subscribe_message(symbol: str) -> str:
    """The text frame that subscribes to `symbol`'s trades."""
    return orjson.dumps({"type": "subscribe", "symbol": symbol}).decode()


def backoff_s(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Delay before reconnect `attempt` (0-based): exponential, capped, 50-100 % jitter."""
    base = min(maximum, initial * 2 ** min(attempt, 30))
    return base * (0.5 + rng.random() / 2)


class FinnhubTradesProvider:
    """Streams trades of the given symbols, reconnecting forever."""

    name = "finnhub_trades"

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        heartbeat_timeout_s: float = 30.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self.errors = ErrorCounts(self.name)
        self.connects = 0
        self.disconnects = 0
        self.delays: list[float] = []  # reconnect delays waited (last 100)

    async def ticks(self, symbols: Sequence[str]) -> AsyncIterator[list[Tick]]:
        """Trades as they arrive, one batch per message, until cancelled."""
        if not symbols:
            return
        wanted = frozenset(symbols)
        separator = "&" if "?" in self.url else "?"
        attempt = 0
        while True:
            reason = "closed"
            try:
                async with connect(
                    f"{self.url}{separator}token={self._api_key}", open_timeout=10, proxy=None
                ) as ws:
                    for symbol in symbols:
                        await ws.send(subscribe_message(symbol))
                    self.connects += 1
                    log.info("websocket subscribed", extra={"symbols": len(symbols)})
                    while True:
                        try:
                            raw = await asyncio.wait_for(ws.recv(), self.heartbeat_timeout_s)
                        except TimeoutError:
                            reason = "heartbeat_timeout"
                            break
                        attempt = 0
                        parsed = parse_message(raw, wanted, round(self._clock() * 1000))
                        for kind, why in parsed.errors:
                            self.errors.count(kind, why)
                        if parsed.ticks:
                            yield parsed.ticks
            except ConnectionClosed:
                reason = "closed"
            except InvalidHandshake as exc:
                reason = "handshake_failed"
                self.errors.count("connect_failed", type(exc).__name__)
            except (OSError, TimeoutError, InvalidURI) as exc:
                reason = "connect_failed"
                self.errors.count("connect_failed", type(exc).__name__)
            delay = backoff_s(attempt, self.backoff_initial_s, self.backoff_max_s, self._rng)
            attempt += 1
            self.disconnects += 1
            self.delays = [*self.delays[-99:], delay]
            INGEST_DISCONNECTS.labels(self.name, reason).inc()
            log.warning("websocket disconnected", extra={"reason": reason, "retry_in_s": delay})
            await self._sleep(delay)
