"""`simulate`: a seeded geometric Brownian motion for any number of symbols.

Time is cut into slices (`slice_s`, aligned to the wall clock). Each slice carries
`rate * slice_s` ticks, generated with numpy in vectorised rounds: a round moves a random
subset of distinct symbols one GBM step each, so a symbol's ticks within a slice are in
round order and their event times (spread evenly over the slice) never go backwards. A
step is `exp((drift - vol^2/2) dt + vol sqrt(dt) z)` with `dt` the mean time between two
ticks of a symbol. Initial prices come from each symbol's name, so a symbol starts at the
same price on whichever pod owns it. A slice the generator fell behind on is skipped.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from hashlib import blake2b

import numpy as np

from services.ingest.providers.base import ErrorCounts
from stockstream.metrics import INGEST_POLL_SKIPPED
from stockstream.ticks import Tick

#: Seconds in a trading year (252 sessions of 6.5 hours): the unit of drift and volatility.
TRADING_YEAR_S = 252 * 6.5 * 3600
SOURCE = "simulate:gbm"


def _name_seed(text: str) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big")


def initial_prices(symbols: Sequence[str], seed: int) -> np.ndarray:
    """A start price per symbol between about 5 and 500, fixed by (seed, symbol)."""
    fractions = np.array([_name_seed(f"{seed}:{s}") / 2**64 for s in symbols], dtype=float)
    return np.round(5.0 * 100.0**fractions, 2)


class GbmBatches:
    """The vectorised generator: `batch(start_ms, span_ms, count)` ticks for one slice."""

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        rate: float,
        seed: int,
        volatility: float,
        drift: float,
    ) -> None:
        self.symbols = list(symbols)
        self.prices = initial_prices(self.symbols, seed)
        self.rng = np.random.default_rng([seed & 0xFFFFFFFF, _name_seed(",".join(symbols))])
        dt = len(self.symbols) / rate / TRADING_YEAR_S
        self._mu_dt = (drift - volatility**2 / 2) * dt
        self._sigma_sqrt_dt = volatility * math.sqrt(dt)

    def batch(self, start_ms: int, span_ms: int, count: int) -> list[Tick]:
        """`count` ticks with event times spread over `[start_ms, start_ms + span_ms)`."""
        n = len(self.symbols)
        if count <= 0 or n == 0:
            return []
        picks: list[np.ndarray] = []
        prices: list[np.ndarray] = []
        remaining = count
        while remaining > 0:
            m = min(n, remaining)
            idx = self.rng.permutation(n) if m == n else self.rng.choice(n, m, replace=False)
            steps = np.exp(self._mu_dt + self._sigma_sqrt_dt * self.rng.standard_normal(m))
            self.prices[idx] *= steps
            picks.append(idx)
            prices.append(self.prices[idx])
            remaining -= m
        sizes = self.rng.integers(1, 20, size=count) * 100
        ts = start_ms + (np.arange(count, dtype=np.int64) * span_ms) // count
        published = np.maximum(np.round(np.concatenate(prices), 4), 0.0001)
        names = self.symbols
        return [
            Tick(names[i], p, t, float(v), SOURCE)
            for i, p, t, v in zip(
                np.concatenate(picks).tolist(),
                published.tolist(),
                ts.tolist(),
                sizes.tolist(),
                strict=True,
            )
        ]


class SimulateProvider:
    """Ticks at `rate` per second in total over the given symbols, event time = now."""

    name = "simulate"

    def __init__(
        self,
        *,
        rate: float,
        seed: int = 1,
        volatility: float = 0.5,
        drift: float = 0.0,
        slice_s: float = 0.1,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.seed = seed
        self.volatility = volatility
        self.drift = drift
        self.slice_s = slice_s
        self._clock = clock
        self._sleep = sleep
        self.errors = ErrorCounts(self.name)

    async def ticks(self, symbols: Sequence[str]) -> AsyncIterator[list[Tick]]:
        """One batch per slice, forever (nothing for an empty shard)."""
        if not symbols:
            return
        gen = GbmBatches(
            symbols, rate=self.rate, seed=self.seed, volatility=self.volatility, drift=self.drift
        )
        span = self.slice_s
        index = math.ceil(self._clock() / span)  # slice `index` covers [index, index+1) * span
        carry = 0.0
        while True:
            await self._sleep(max(0.0, (index + 1) * span - self._clock()))
            behind = math.floor(self._clock() / span + 1e-9) - 1 - index
            if behind > 0:  # the slices in between are skipped, not generated late
                INGEST_POLL_SKIPPED.labels(self.name, "overrun").inc(behind)
                index += behind
            wanted = self.rate * span + carry
            count = int(wanted)
            carry = wanted - count
            yield gen.batch(round(index * span * 1000), round(span * 1000), count)
            index += 1
