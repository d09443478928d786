"""The simulate and replay providers on their own (no broker): counts, order, contract."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncGenerator, AsyncIterator
from itertools import islice

import numpy as np
import pytest

from services.ingest.providers.replay import ReplayProvider
from services.ingest.providers.simulate import GbmBatches, SimulateProvider, initial_prices
from services.replay.reader import iter_ticks
from stockstream.ticks import Tick, decode, encode
from tests.services.replay.samples import SSE_FILE

SYMBOLS = [f"SIM{i:05d}" for i in range(10_000)]


class FakeClock:
    """Wall clock that only moves when the provider sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def take(source: AsyncIterator[list[Tick]], batches: int) -> list[list[Tick]]:
    out: list[list[Tick]] = []
    async for batch in source:
        out.append(batch)
        if len(out) == batches:
            break
    assert isinstance(source, AsyncGenerator), source
    await source.aclose()
    return out


def assert_per_symbol_order(ticks: list[Tick]) -> None:
    last: dict[str, int] = {}
    for tick in ticks:
        assert tick.ts_ms >= last.get(tick.symbol, 0), tick
        last[tick.symbol] = tick.ts_ms


@pytest.mark.parametrize(
    ("symbols", "rate", "slice_s"),
    [(10_000, 50_000.0, 0.1), (3, 1000.0, 0.1), (10_000, 3_000.0, 0.1), (1, 7.0, 1.0)],
)
def test_simulate_rate_order_and_contract(symbols: int, rate: float, slice_s: float) -> None:
    clock = FakeClock(1_732_900_000.05)
    provider = SimulateProvider(rate=rate, seed=3, slice_s=slice_s, clock=clock, sleep=clock.sleep)
    batches = asyncio.run(take(provider.ticks(SYMBOLS[:symbols]), 10))
    ticks = [tick for batch in batches for tick in batch]
    assert len(ticks) == pytest.approx(rate * slice_s * 10, abs=1)  # exact rate, carry kept
    assert_per_symbol_order(ticks)
    first_slice = math.ceil(1_732_900_000.05 / slice_s) * slice_s
    assert ticks[0].ts_ms == round(first_slice * 1000)
    assert ticks[-1].ts_ms < round((first_slice + 10 * slice_s) * 1000)
    for tick in islice(ticks, 0, None, max(1, len(ticks) // 500)):
        assert decode(*encode(tick)) == tick
    if rate * slice_s >= symbols:  # every symbol moves in every slice
        assert {t.symbol for t in batches[0]} == set(SYMBOLS[:symbols])


def test_simulate_is_seeded_and_skips_slices_it_fell_behind_on() -> None:
    def run(seed: int) -> list[Tick]:
        clock = FakeClock(1000.0)
        provider = SimulateProvider(rate=100, seed=seed, clock=clock, sleep=clock.sleep)
        return [t for b in asyncio.run(take(provider.ticks(SYMBOLS[:20]), 3)) for t in b]

    assert run(5) == run(5)
    assert run(5) != run(6)

    clock = FakeClock(1000.0)
    provider = SimulateProvider(rate=100, slice_s=0.1, clock=clock, sleep=clock.sleep)

    async def lagging() -> list[list[Tick]]:
        out = []
        async for batch in provider.ticks(SYMBOLS[:20]):
            out.append(batch)
            clock.now += 0.35 if len(out) == 1 else 0  # a slow consumer after batch 1
            if len(out) == 3:
                return out
        return out

    batches = asyncio.run(lagging())
    starts = [b[0].ts_ms for b in batches]
    assert starts[0] == 1_000_000
    # Batch 2 is asked for at +450 ms: the slices starting at +100 and +200 ms are skipped
    # (not made up), the last complete one (+300 ms) is generated.
    assert starts[1] - starts[0] == 300
    assert starts[2] - starts[1] == 100


def test_gbm_steps_have_the_configured_volatility() -> None:
    gen = GbmBatches(SYMBOLS[:100], rate=100.0, seed=1, volatility=0.5, drift=0.0)
    start = gen.prices.copy()
    ticks = gen.batch(0, 1000, 100 * 400)  # 400 steps of 1 s per symbol
    assert len({t.symbol for t in ticks}) == 100
    log_returns = np.log(gen.prices / start)
    expected_sd = 0.5 * math.sqrt(400 / (252 * 6.5 * 3600))
    assert np.std(log_returns) == pytest.approx(expected_sd, rel=0.25)
    assert all(t.price > 0 for t in ticks)
    assert np.array_equal(initial_prices(["AAPL"], 1), initial_prices(["AAPL"], 1))
    assert 5 <= initial_prices(SYMBOLS[:1000], 1).min() < initial_prices(SYMBOLS, 1).max() <= 500


def test_simulate_nothing_for_an_empty_shard() -> None:
    assert asyncio.run(take(SimulateProvider(rate=10).ticks([]), 1)) == []


SSE_SYMBOLS = ["600566", "603369"]


@pytest.mark.parametrize("symbols", [None, SSE_SYMBOLS])
def test_replay_as_fast_as_possible_is_the_reader(symbols: list[str] | None) -> None:
    assert list(iter_ticks(SSE_FILE, symbols=symbols))
    provider = ReplayProvider(SSE_FILE, speed=0, loop=False)

    async def everything() -> list[Tick]:
        return [t async for b in provider.ticks(symbols) for t in b]

    assert asyncio.run(everything()) == list(iter_ticks(SSE_FILE, symbols=symbols))


def test_replay_loops_with_increasing_event_time() -> None:
    one_pass = list(iter_ticks(SSE_FILE, symbols=["600566"]))
    provider = ReplayProvider(SSE_FILE, speed=0, loop=True)

    async def two_passes_and_one() -> list[Tick]:
        out: list[Tick] = []
        async for batch in provider.ticks(["600566"]):
            out.extend(batch)
            if len(out) > 2 * len(one_pass):
                break
        return out[: 2 * len(one_pass) + 1]

    ticks = asyncio.run(two_passes_and_one())
    assert len(ticks) == 2 * len(one_pass) + 1
    assert_per_symbol_order(ticks)
    assert ticks[len(one_pass)].ts_ms > one_pass[-1].ts_ms
    assert ticks[len(one_pass)].price == one_pass[0].price


def test_replay_paces_on_event_time() -> None:
    clock = FakeClock(0.0)
    waited = 0.0

    async def sleep_on_clock(seconds: float) -> None:
        """The provider's sleep, moving the fake clock instead of waiting."""
        nonlocal waited
        waited += seconds
        clock.now += seconds
        await asyncio.sleep(0)

    provider = ReplayProvider(SSE_FILE, speed=60.0, loop=False, clock=clock, sleep=sleep_on_clock)
    ticks = list(islice(iter_ticks(SSE_FILE), 400))
    span_s = (ticks[-1].ts_ms - ticks[0].ts_ms) / 1000

    async def run() -> int:
        count = 0
        async for batch in provider.ticks(None):
            count += len(batch)
            if count >= 400:
                break
        assert waited == pytest.approx(span_s / 60.0, abs=0.01)
        return count

    assert asyncio.run(run()) >= 400
