"""The ingest loop: run the provider on this pod's shard while the market is in session,
hand its batches to the publisher, and restart it when the shard or the session changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from services.ingest.providers.base import Provider
from services.ingest.publisher import Publisher
from services.ingest.schedule import MarketHours
from services.ingest.sharding import shard_of
from stockstream.metrics import (
    INGEST_RESHARDS,
    INGEST_SESSION_OPEN,
    INGEST_SHARD_COUNT,
    INGEST_SHARD_INDEX,
    INGEST_SHARD_SYMBOLS,
)

log = logging.getLogger(__name__)

_RESTART_DELAY_S = 1.0


class Runner:
    """One pod's ingest loop; `set_count` may be called from any thread."""

    def __init__(
        self,
        provider: Provider,
        publisher: Publisher,
        hours: MarketHours,
        universe: Sequence[str],
        *,
        index: int,
        count: int | None,
        idle_ready: bool = False,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.provider = provider
        self.publisher = publisher
        self.hours = hours
        self.universe = list(universe)
        self.index = index
        self.count = count
        self.idle_ready = idle_ready
        self._now = now
        self.session_open = False
        self.symbols: list[str] = []
        self.finished = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None

    def set_count(self, count: int) -> None:
        """The StatefulSet's replica count changed: re-shard (thread-safe)."""

        def apply() -> None:
            if count != self.count:
                log.info("re-sharding", extra={"from": self.count, "to": count})
                if self.count is not None:
                    INGEST_RESHARDS.inc()
                self.count = count
                if self._changed is not None:
                    self._changed.set()

        if self._loop is None:
            apply()
        else:
            self._loop.call_soon_threadsafe(apply)

    def ready(self) -> bool:
        """Ready when the broker is reachable and the pod works (or may idle ready)."""
        working = self.session_open and bool(self.symbols)
        return self.publisher.ready() and (working or self.idle_ready)

    async def _pump(self, symbols: list[str]) -> None:
        async for batch in self.provider.ticks(symbols):
            self.publisher.submit(batch, round(time.time() * 1000))

    def _shard(self) -> list[str]:
        if self.count is None:
            return []  # membership not known yet
        INGEST_SHARD_COUNT.set(self.count)
        INGEST_SHARD_INDEX.set(self.index)
        symbols = shard_of(self.universe, self.count, self.index)
        INGEST_SHARD_SYMBOLS.set(len(symbols))
        return symbols

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` (or until a finite provider ends: then `finished` is set)."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._changed = changed = asyncio.Event()
            self.symbols = self._shard()
            state = self.hours.state(self._now())
            self.session_open = state.open
            INGEST_SESSION_OPEN.set(1 if state.open else 0)
            timeout = max(0.0, (state.until - self._now()).total_seconds())
            log.info(
                "ingest state",
                extra={
                    "session_open": state.open,
                    "until": state.until.isoformat(),
                    "shard": f"{self.index}/{self.count}",
                    "symbols": len(self.symbols),
                },
            )
            waits: set[asyncio.Task[object]] = {
                asyncio.create_task(stop.wait()),
                asyncio.create_task(changed.wait()),
            }
            pump: asyncio.Task[object] | None = None
            if state.open and self.symbols:
                pump = asyncio.create_task(self._pump(self.symbols))
                waits.add(pump)
            await asyncio.wait(waits, timeout=min(timeout, 86_400), return_when="FIRST_COMPLETED")
            for task in waits - {pump}:
                task.cancel()
            if pump is None:
                continue
            if pump.done():
                if pump.exception() is None:
                    self.finished = True
                    log.info("provider finished")
                    return
                self.provider.errors.count("crash", repr(pump.exception())[:200])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), _RESTART_DELAY_S)
                continue
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
