"""Finnhub providers against local servers shaped like Finnhub: quotes polled on clock-aligned
beats and published only when their time moved; every unusable answer counted by kind; 429
Retry-After honoured; the trade websocket reconnects with backoff and resubscribes."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator

import httpx
import orjson
import pytest
from websockets.asyncio.server import ServerConnection, serve

from services.ingest.providers.finnhub_quote import FinnhubQuoteProvider
from services.ingest.providers.finnhub_trades import FinnhubTradesProvider
from stockstream.ticks import Tick, decode, encode
from tests.services.ingest.fake_finnhub import (
    MALFORMED,
    PING,
    SERVER_ERROR,
    TOKEN,
    Answer,
    QuoteScript,
    quote,
    quote_server,
    rate_limited,
    trade,
    trades,
)


async def collect(source: AsyncIterator[list[Tick]], seconds: float) -> list[Tick]:
    out: list[Tick] = []

    async def run() -> None:
        async for batch in source:
            out.extend(batch)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), seconds)
    return out


class _EnoughRoundsError(Exception):
    """Raised from the provider's sleep once the wanted number of rounds has completed."""


class RoundLimit:
    """A provider `sleep` that ends the ticks stream after `rounds` poll rounds.

    The provider sleeps only between rounds, after every request of the round has been
    answered and counted, so the server's served counts and the provider's error counts are
    compared at a quiescent point (stopping after a wall-time budget instead raced with a
    request the server had answered but the provider had not yet counted)."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.provider: FinnhubQuoteProvider | None = None

    async def sleep(self, seconds: float) -> None:
        assert self.provider is not None, "set RoundLimit.provider"
        if len(self.provider.beats) >= self.rounds:
            raise _EnoughRoundsError
        await asyncio.sleep(seconds)


def polled_provider(rounds: int, **kwargs: object) -> FinnhubQuoteProvider:
    """A quote provider whose `ticks` stream stops after `rounds` poll rounds."""
    limit = RoundLimit(rounds)
    provider = FinnhubQuoteProvider(sleep=limit.sleep, **kwargs)  # type: ignore[arg-type]
    limit.provider = provider
    return provider


async def collect_rounds(
    provider: FinnhubQuoteProvider, symbols: list[str], deadline_s: float = 120.0
) -> list[Tick]:
    """Every tick of a `polled_provider` until its rounds are done; a generous deadline turns
    a hang into a failure."""
    out: list[Tick] = []
    with contextlib.suppress(_EnoughRoundsError):
        async with asyncio.timeout(deadline_s):
            async for batch in provider.ticks(symbols):
                out.extend(batch)
    return out


def test_quotes_only_when_changed_and_errors_by_kind() -> None:
    t0 = int(time.time()) - 600
    script = QuoteScript(
        {
            "AAPL": [
                quote(100.0, t0),
                quote(100.0, t0),  # unchanged: not published again
                quote(101.0, t0 + 10),
                SERVER_ERROR,
                quote(102.0, t0 + 20),
                MALFORMED,
                quote(99.0, t0 + 5),  # time went back: stale
                Answer(200, b'{"d":1.2,"t":%d}' % (t0 + 30)),  # no price
                quote(103.0, t0 + 40),
            ],
            "BAD": [Answer(200, b'{"c":-1.0,"t":%d}' % t0)],
            # "ZZZZ" is not scripted: Finnhub's all-zero answer for unknown symbols.
        }
    )
    with quote_server(script) as url:
        provider = polled_provider(12, base_url=url, api_key=TOKEN, interval_s=0.2)
        ticks = asyncio.run(collect_rounds(provider, ["AAPL", "BAD", "ZZZZ"]))
    assert script.served["AAPL"] == 12
    assert [(t.symbol, t.price, t.ts_ms) for t in ticks] == [
        ("AAPL", 100.0, t0 * 1000),
        ("AAPL", 101.0, (t0 + 10) * 1000),
        ("AAPL", 102.0, (t0 + 20) * 1000),
        ("AAPL", 103.0, (t0 + 40) * 1000),
    ]
    assert all(decode(*encode(t)) == t for t in ticks)
    errors = provider.errors.by_kind
    assert errors["http_5xx"] == 1
    assert errors["malformed"] == 1
    assert errors["stale"] == 1
    assert errors["missing_field"] == 1
    assert errors["bad_value"] == script.served["BAD"]
    assert errors["unknown_symbol"] == script.served["ZZZZ"] == 12
    # Beats are aligned to the clock: every round starts on a multiple of the interval (a
    # loaded machine may overrun some beats; `SteppedClock` tests check overruns exactly).
    assert all(abs(b / 0.2 - round(b / 0.2)) < 1e-3 for b in provider.beats)


def test_bad_key_and_unreachable_server_are_counted_not_fatal() -> None:
    script = QuoteScript({"AAPL": [quote(100.0, int(time.time()))]})
    with quote_server(script) as url:
        provider = polled_provider(2, base_url=url, api_key="wrong", interval_s=0.2)
        assert asyncio.run(collect_rounds(provider, ["AAPL"])) == []
    assert provider.errors.by_kind["unauthorized"] == 2
    # The server is gone now: connection refused, counted as transport errors.
    provider = polled_provider(2, base_url=url, api_key=TOKEN, interval_s=0.2, timeout_s=0.5)
    assert asyncio.run(collect_rounds(provider, ["AAPL"])) == []
    assert provider.errors.by_kind["transport"] == 2


@pytest.mark.parametrize("retry_after", ["1", None])
def test_429_pauses_every_request_until_retry_after(retry_after: str | None) -> None:
    now = int(time.time())
    script = QuoteScript(
        {"AAPL": [rate_limited(retry_after), quote(100.0, now)], "MSFT": [quote(50.0, now)]}
    )
    with quote_server(script) as url:
        if retry_after is None:  # Finnhub may omit it: then wait a default minute
            provider = FinnhubQuoteProvider(
                base_url=url, api_key=TOKEN, interval_s=0.2, concurrency=1
            )
            ticks = asyncio.run(collect(provider.ticks(["AAPL", "MSFT"]), 1.5))
            assert ticks == []
            assert [symbol for _, symbol, _ in script.requests] == ["AAPL"]
            return
        provider = polled_provider(2, base_url=url, api_key=TOKEN, interval_s=0.2, concurrency=1)
        ticks = asyncio.run(collect_rounds(provider, ["AAPL", "MSFT"]))
    times = [(at, symbol) for at, symbol, _ in script.requests]
    assert times[0][1] == "AAPL"
    assert times[1][1] == "AAPL"  # MSFT was not asked in the rate-limited round
    assert times[1][0] - times[0][0] >= 1.0 - 0.05  # honoured Retry-After: 1
    assert [t.symbol for t in ticks] == ["AAPL", "MSFT"]
    assert provider.errors.by_kind["rate_limited"] == 1


class SteppedClock:
    """Wall clock moved only by sleeps and by the 'duration' of each request."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0, "negative sleep"
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("durations", "beats", "overruns"),
    [
        ([1, 1, 1, 1], [1000, 1010, 1020, 1030], 0),
        ([3, 25, 3, 11, 3], [1000, 1010, 1040, 1050, 1070], 3),
        ([10, 10, 10], [1000, 1010, 1020], 0),  # exactly one interval: no beat lost
        ([95, 1, 1], [1000, 1100, 1110], 9),
    ],
)
def test_overrunning_polls_skip_beats_without_drift(
    durations: list[float], beats: list[float], overruns: int
) -> None:
    clock = SteppedClock(995.5)
    served = iter(durations)
    t = 900

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal t
        clock.now += next(served)
        t += 1
        return httpx.Response(200, content=orjson.dumps({"c": 10.0 + t / 100, "t": t}))

    provider = FinnhubQuoteProvider(
        base_url="http://finnhub.test/api/v1",
        api_key=TOKEN,
        interval_s=10.0,
        clock=clock,
        sleep=clock.sleep,
        transport=httpx.MockTransport(handler),
    )

    async def run() -> list[Tick]:
        out: list[Tick] = []
        async for batch in provider.ticks(["AAPL"]):
            out.extend(batch)
            if len(out) == len(durations):
                break
        return out

    ticks = asyncio.run(run())
    assert len(ticks) == len(durations)
    assert provider.beats == beats
    assert provider.overruns == overruns
    assert min(clock.sleeps) >= 0


async def _trade_session(ws: ServerConnection, index: int, t0: int) -> None:
    if index == 0:
        await ws.send(trades(trade("AAPL", 100.0, t0), trade("MSFT", 50.0, t0 + 1)))
        await ws.send(PING)
        await ws.send("{not json")
        await ws.send(trades(trade("AAPL", 100.5, t0 + 2), trade("GOOG", 1.0, t0 + 2)))
        await ws.send('{"type":"error","msg":"Subscribing to too many symbols"}')
        return  # the server closes the connection
    if index == 1:
        await ws.send(trades(trade("AAPL", 101.0, t0 + 3)))
        await ws.wait_closed()  # silent, but open: only the heartbeat timeout notices
        return
    await ws.send(trades(trade("MSFT", 51.0, t0 + 4), trade("AAPL", 102.0, t0 + 5, 0.5)))
    await ws.wait_closed()


def test_trades_reconnect_resubscribe_and_count_disconnects() -> None:
    t0 = int(time.time() * 1000) - 60_000
    subscriptions: dict[int, list[str]] = defaultdict(list)
    paths: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        index = len(paths)
        paths.append(ws.request.path if ws.request else "")
        for _ in range(2):
            message = orjson.loads(await ws.recv())
            assert message["type"] == "subscribe"
            subscriptions[index].append(message["symbol"])
        await _trade_session(ws, index, t0)

    async def run() -> tuple[list[Tick], FinnhubTradesProvider]:
        async with serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            provider = FinnhubTradesProvider(
                url=f"ws://127.0.0.1:{port}",
                api_key=TOKEN,
                heartbeat_timeout_s=2.0,  # generous: a loaded machine stalls processes
                backoff_initial_s=0.05,
                backoff_max_s=0.2,
                rng=random.Random(1),
            )
            out: list[Tick] = []
            source = provider.ticks(["AAPL", "MSFT"])
            assert isinstance(source, AsyncGenerator)  # closed explicitly below
            async for batch in source:
                out.extend(batch)
                if len(out) >= 6:
                    break
            await source.aclose()
            return out, provider

    ticks, provider = asyncio.run(asyncio.wait_for(run(), 20))
    assert [(t.symbol, t.price, t.ts_ms) for t in ticks] == [
        ("AAPL", 100.0, t0),
        ("MSFT", 50.0, t0 + 1),
        ("AAPL", 100.5, t0 + 2),
        ("AAPL", 101.0, t0 + 3),
        ("MSFT", 51.0, t0 + 4),
        ("AAPL", 102.0, t0 + 5),
    ]
    assert ticks[-1].size == 0.5
    assert all(decode(*encode(t)) == t for t in ticks)
    assert subscriptions == {0: ["AAPL", "MSFT"], 1: ["AAPL", "MSFT"], 2: ["AAPL", "MSFT"]}
    assert all(f"token={TOKEN}" in path for path in paths)
    assert provider.connects == 3
    assert provider.disconnects == 2  # closed by the server, then silent past the heartbeat
    errors = provider.errors.by_kind
    assert (errors["malformed"], errors["unexpected_symbol"], errors["api_error"]) == (1, 1, 1)


def test_unreachable_websocket_backs_off_exponentially() -> None:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 6:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    provider = FinnhubTradesProvider(
        url="ws://127.0.0.1:9",  # discard port: connection refused
        api_key=TOKEN,
        backoff_initial_s=1.0,
        backoff_max_s=8.0,
        rng=random.Random(2),
        sleep=fake_sleep,
    )

    async def run() -> None:
        async for _ in provider.ticks(["AAPL"]):
            pass

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(run())
    assert provider.disconnects == 6 == provider.errors.by_kind["connect_failed"]
    for attempt, delay in enumerate(sleeps):
        base = min(8.0, 2.0**attempt)
        assert base / 2 <= delay <= base
