"""Time every cyclic garbage collection of the process into `stockstream_gc_pause_seconds`.

A collection stops the whole interpreter: a full (generation 2) collection walks every object
the process tracks, so at thousands of symbols it can hold back a window by tens of
milliseconds. `prometheus_client`'s default `python_gc_collections_total` counts collections
but does not time them; this histogram does, per generation, so a latency outlier can be laid
beside the pauses of the same minutes. A pause of `SLOW_PAUSE_S` or more is also logged.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from prometheus_client import Histogram

from stockstream.metrics import GC_PAUSE

log = logging.getLogger(__name__)

SLOW_PAUSE_S = 0.02


class GcPauseTimer:
    """A `gc.callbacks` entry: starts a clock at a collection's start, observes it at its stop."""

    def __init__(self) -> None:
        self._started_s = 0.0
        self._by_generation: dict[int, Histogram] = {
            generation: GC_PAUSE.labels(generation=str(generation)) for generation in range(3)
        }

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_s = time.perf_counter()
            return
        pause_s = time.perf_counter() - self._started_s
        generation = int(info["generation"])
        self._by_generation[generation].observe(pause_s)
        if pause_s >= SLOW_PAUSE_S:
            log.info(
                "slow garbage collection",
                extra={
                    "generation": generation,
                    "pause_ms": round(pause_s * 1000, 1),
                    "collected": info["collected"],
                },
            )


def observe_gc_pauses() -> GcPauseTimer:
    """Install the timer once per process (a second call returns the installed one)."""
    for callback in gc.callbacks:
        if isinstance(callback, GcPauseTimer):
            return callback
    timer = GcPauseTimer()
    gc.callbacks.append(timer)
    return timer
