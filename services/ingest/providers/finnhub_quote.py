"""`finnhub_quote`: poll Finnhub's `GET /quote?symbol=X&token=KEY` for every symbol of the
pod, on beats aligned to the clock (`providers.clock`), publishing a quote only when its own
update time `t` moved forward, with `t` as the event time.

A Finnhub quote (https://finnhub.io/docs/api/quote) looks like
`{"c": 261.74, "d": 0.74, "dp": 0.28, "h": 263.31, "l": 260.68, "o": 261.07, "pc": 261,
"t": 1582641000}`; an unknown symbol answers 200 with every number 0 (`d`/`dp` null).
Errors answer `{"error": "..."}` with 401/403 (key), 429 (rate limit) or 5xx. Every
unusable answer is counted by kind, logged and skipped; a 429 pauses all requests until its
`Retry-After` has passed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import orjson

from services.ingest.providers.base import ErrorCounts
from services.ingest.providers.clock import Beat, beat_at_or_after, first_beat, next_beat
from stockstream.metrics import INGEST_POLL_DURATION, INGEST_POLL_SKIPPED
from stockstream.ticks import Tick

log = logging.getLogger(__name__)

SOURCE = "finnhub:quote"
DEFAULT_RETRY_AFTER_S = 60.0
MAX_FUTURE_S = 300


class QuoteError(Exception):
    """An unusable quote: `kind` labels the metric, the message says why."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


def _number(body: dict[str, object], name: str) -> float:
    if name not in body or body[name] is None:
        raise QuoteError("missing_field", f"no {name!r}")
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise QuoteError("bad_value", f"{name} is {type(value).__name__}")
    if not math.isfinite(value):
        raise QuoteError("bad_value", f"{name} is {value!r}")
    return float(value)


def parse_quote(symbol: str, raw: bytes, now_ms: int) -> Tick:
    """The tick in a 200 answer's body, or `QuoteError` saying why there is none."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise QuoteError("malformed", f"invalid JSON: {str(exc)[:80]}") from None
    if not isinstance(body, dict):
        raise QuoteError("malformed", f"JSON {type(body).__name__}, not an object")
    if "error" in body:
        raise QuoteError("api_error", str(body["error"])[:120])
    price = _number(body, "c")
    updated = _number(body, "t")
    if price == 0 and updated == 0:
        raise QuoteError("unknown_symbol", "all-zero quote")
    if price <= 0:
        raise QuoteError("bad_value", f"price {price!r}")
    if updated <= 0 or updated != int(updated):
        raise QuoteError("bad_value", f"time {updated!r}")
    ts_ms = int(updated) * 1000
    if ts_ms > now_ms + MAX_FUTURE_S * 1000:
        raise QuoteError("bad_value", f"time {int(updated)} is in the future")
    return Tick(symbol, price, ts_ms, None, SOURCE)


def retry_after_s(value: str | None, now: datetime) -> float:
    """A `Retry-After` header (seconds or an HTTP date) in seconds from now."""
    if not value:
        return DEFAULT_RETRY_AFTER_S
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER_S


class FinnhubQuoteProvider:
    """Clock-aligned quote polling; `clock` is wall time in seconds (injectable)."""

    name = "finnhub_quote"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        interval_s: float = 10.0,
        concurrency: int = 4,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.interval_s = interval_s
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self._clock = clock
        self._sleep = sleep
        self._transport = transport
        self.errors = ErrorCounts(self.name)
        self.blocked_until = 0.0
        self.beats: list[float] = []  # when each poll round started (last 1000)
        self.overruns = 0  # beats skipped because a poll ran over them
        self._last_t: dict[str, int] = {}

    async def ticks(self, symbols: Sequence[str]) -> AsyncIterator[list[Tick]]:
        """One batch of changed quotes per beat, forever."""
        if not symbols:
            return
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout_s, transport=self._transport
        ) as client:
            beat = first_beat(self._clock(), self.interval_s)
            while True:
                await self._sleep(beat.sleep)
                if self.blocked_until > beat.at:
                    beat = self._after_rate_limit(beat.at)
                    continue
                self.beats = [*self.beats[-999:], beat.at]
                started = self._clock()
                batch = await self.poll(client, symbols)
                INGEST_POLL_DURATION.labels(self.name).observe(self._clock() - started)
                if batch:
                    yield batch
                beat = next_beat(beat.at, self._clock(), self.interval_s)
                if beat.skipped:
                    self.overruns += beat.skipped
                    INGEST_POLL_SKIPPED.labels(self.name, "overrun").inc(beat.skipped)
                    log.warning("poll overran", extra={"skipped_beats": beat.skipped})

    def _after_rate_limit(self, at: float) -> Beat:
        """The first beat after a 429's Retry-After; the ones before it are skipped."""
        resume = beat_at_or_after(self.blocked_until, self.interval_s)
        skipped = max(0, round((resume - at) / self.interval_s))
        INGEST_POLL_SKIPPED.labels(self.name, "rate_limited").inc(skipped)
        log.info("rate limited: polls paused", extra={"skipped_beats": skipped})
        return Beat(resume, max(0.0, resume - self._clock()), skipped)

    async def poll(self, client: httpx.AsyncClient, symbols: Sequence[str]) -> list[Tick]:
        """One round: every symbol once (at most `concurrency` requests in flight), the
        changed quotes in `symbols` order."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(symbol: str) -> Tick | None:
            async with gate:
                if self.blocked_until > self._clock():
                    return None  # a 429 arrived during this round
                return await self.fetch(client, symbol)

        results = await asyncio.gather(*(one(symbol) for symbol in symbols))
        return [tick for tick in results if tick is not None]

    async def fetch(self, client: httpx.AsyncClient, symbol: str) -> Tick | None:
        """The symbol's quote as a tick if it is usable and newer than the last one."""
        try:
            response = await client.get("/quote", params={"symbol": symbol, "token": self._api_key})
        except httpx.TimeoutException as exc:
            self.errors.count("timeout", type(exc).__name__, symbol=symbol)
            return None
        except httpx.HTTPError as exc:  # connection refused, reset, protocol errors
            self.errors.count("transport", type(exc).__name__, symbol=symbol)
            return None
        status = response.status_code
        if status != 200:
            self._http_error(symbol, response)
            return None
        try:
            tick = parse_quote(symbol, response.content, round(self._clock() * 1000))
        except QuoteError as exc:
            self.errors.count(exc.kind, str(exc), symbol=symbol)
            return None
        last = self._last_t.get(symbol)
        if last is not None and tick.ts_ms <= last:
            if tick.ts_ms < last:
                reason = f"time went back from {last} to {tick.ts_ms}"
                self.errors.count("stale", reason, symbol=symbol)
            return None
        self._last_t[symbol] = tick.ts_ms
        return tick

    def _http_error(self, symbol: str, response: httpx.Response) -> None:
        status = response.status_code
        detail = response.text[:120]
        if status == 429:
            wait = retry_after_s(response.headers.get("Retry-After"), datetime.now(UTC))
            self.blocked_until = max(self.blocked_until, self._clock() + wait)
            self.errors.count("rate_limited", f"429, retry after {wait:.0f}s", symbol=symbol)
        elif status in (401, 403):
            self.errors.count("unauthorized", f"{status} {detail}", symbol=symbol)
        else:
            self.errors.count(f"http_{status // 100}xx", f"{status} {detail}", symbol=symbol)
