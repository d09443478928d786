"""The provider interface and the error accounting every provider shares.

A provider is an async source of tick batches for a given set of symbols::

    async for batch in provider.ticks(["AAPL", "MSFT"]):
        ...

The runner cancels the iteration (and starts a new one) when the shard changes or the
session closes, so `ticks` must clean up on `CancelledError`/`aclose()` and must never
raise for a provider answer: unusable answers are counted by kind in `errors` (and the
`stockstream_ingest_provider_errors` metric), logged, and not published.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from stockstream.metrics import INGEST_PROVIDER_ERRORS
from stockstream.ticks import Tick

log = logging.getLogger(__name__)

_LOGGED_PER_KIND = 20


class ErrorCounts:
    """Provider errors by kind: counted here and in the metric, logged (the first
    `_LOGGED_PER_KIND` of each kind at WARNING, the rest at DEBUG, so a flood of the same
    error cannot drown the log)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.by_kind: Counter[str] = Counter()

    def count(self, kind: str, reason: str, **context: object) -> None:
        """Record one unusable answer or failure of `kind` with a human `reason`."""
        self.by_kind[kind] += 1
        INGEST_PROVIDER_ERRORS.labels(self.provider, kind).inc()
        level = logging.WARNING if self.by_kind[kind] <= _LOGGED_PER_KIND else logging.DEBUG
        log.log(
            level,
            "provider error",
            extra={"provider": self.provider, "kind": kind, "reason": reason, **context},
        )

    @property
    def total(self) -> int:
        """All errors counted so far."""
        return sum(self.by_kind.values())


@runtime_checkable
class Provider(Protocol):
    """A tick source: `name` labels metrics and `Tick.source`; `errors` counts failures."""

    name: str
    errors: ErrorCounts

    def ticks(self, symbols: Sequence[str]) -> AsyncIterator[list[Tick]]:
        """Batches of ticks for `symbols`, in per-symbol order, until cancelled (or, for a
        finite source, until it ends)."""
        ...
