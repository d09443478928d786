"""`replay`: a market-data file through `services.replay`'s reader and pacing, restricted to
the pod's symbols, optionally looped (each pass shifted so event time keeps increasing)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import time as day_time
from itertools import islice
from pathlib import Path

from services.ingest.providers.base import ErrorCounts
from services.replay.formats import Format
from services.replay.pacing import Pacer, looped
from services.replay.reader import iter_ticks
from stockstream.ticks import Tick

_CHUNK = 2000


class ReplayProvider:
    """Ticks of `path` for the given symbols, at `speed` (0 = as fast as possible)."""

    name = "replay"

    def __init__(
        self,
        path: Path,
        fmt: Format | str = Format.AUTO,
        *,
        speed: float = 1.0,
        loop: bool = True,
        from_time: day_time | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.speed = speed
        self.loop = loop
        self.from_time = from_time
        self._clock = clock  # injectable with `sleep`: tests run paced replays on their own time
        self._sleep = sleep
        self.errors = ErrorCounts(self.name)

    def _read(self, symbols: Sequence[str] | None) -> Iterator[Tick]:
        def one_pass() -> Iterator[Tick]:
            return iter_ticks(self.path, self.fmt, self.from_time, symbols)

        return looped(one_pass, self.loop)

    async def ticks(self, symbols: Sequence[str] | None) -> AsyncIterator[list[Tick]]:
        """The file's ticks for `symbols` (None: every symbol of the file), in file order,
        in batches of the ticks due at the same moment. File reading runs in a thread."""
        source = self._read(symbols)
        # The pacer only computes delays; the sleeping is done here, without blocking the loop.
        pacer = Pacer(self.speed, clock=self._clock, sleep=lambda _: None)
        while True:
            chunk = await asyncio.to_thread(lambda: list(islice(source, _CHUNK)))
            if not chunk:
                return
            batch: list[Tick] = []
            for tick in chunk:
                delay = pacer.wait(tick.ts_ms)
                if delay > 0:
                    if batch:
                        yield batch
                        batch = []
                    await self._sleep(delay)
                batch.append(tick)
            if batch:
                yield batch
