"""Per-symbol 10-second sub-aggregates (panes) and the window figures derived from them.

Each tick updates exactly one pane, so the cost per tick is O(1) whatever the number of
overlapping windows; a window's figures are folded from its panes when it closes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from dataflows.leaders.specs import PANE_MS

_FOUR_LN2 = 4.0 * math.log(2.0)


@dataclass(slots=True)
class Pane:
    """Aggregate of one symbol's ticks in `[index * 10 s, (index + 1) * 10 s)`."""

    count: int
    price_sum: float
    notional_sum: float
    size_sum: float
    high: float
    low: float
    first_ts_ms: int
    first_price: float
    last_ts_ms: int
    last_price: float

    @classmethod
    def of(cls, price: float, size: float | None, ts_ms: int) -> Pane:
        sized = 0.0 if size is None else size
        return cls(1, price, price * sized, sized, price, price, ts_ms, price, ts_ms, price)

    def add(self, price: float, size: float | None, ts_ms: int) -> None:
        """Fold one tick in. Equal timestamps keep arrival order: first stays, last moves."""
        self.count += 1
        self.price_sum += price
        if size is not None:
            self.notional_sum += price * size
            self.size_sum += size
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        if ts_ms < self.first_ts_ms:
            self.first_ts_ms, self.first_price = ts_ms, price
        if ts_ms >= self.last_ts_ms:
            self.last_ts_ms, self.last_price = ts_ms, price


@dataclass(frozen=True, slots=True)
class Figures:
    """One symbol's figures over one window."""

    symbol: str
    count: int
    mean: float
    min: float
    max: float
    first: float
    last: float
    vwap: float | None
    gain_pct: float
    volatility: float

    def score(self, name: str) -> float:
        """The figure named `name` ("mean" or "max")."""
        return self.mean if name == "mean" else self.max


@dataclass(slots=True)
class _Fold:
    """Running fold over panes visited newest first."""

    count: int = 0
    price_sum: float = 0.0
    notional_sum: float = 0.0
    size_sum: float = 0.0
    high: float = -math.inf
    low: float = math.inf
    first_price: float = 0.0
    last_price: float = 0.0
    range_sq_sum: float = 0.0
    panes: int = 0

    def add(self, pane: Pane) -> None:
        if self.count == 0:
            self.last_price = pane.last_price
        self.count += pane.count
        self.price_sum += pane.price_sum
        self.notional_sum += pane.notional_sum
        self.size_sum += pane.size_sum
        self.high = max(self.high, pane.high)
        self.low = min(self.low, pane.low)
        self.first_price = pane.first_price
        log_range = math.log(pane.high / pane.low)
        self.range_sq_sum += log_range * log_range
        self.panes += 1

    def figures(self, symbol: str) -> Figures:
        return Figures(
            symbol=symbol,
            count=self.count,
            mean=self.price_sum / self.count,
            min=self.low,
            max=self.high,
            first=self.first_price,
            last=self.last_price,
            vwap=self.notional_sum / self.size_sum if self.size_sum > 0 else None,
            gain_pct=(self.last_price - self.first_price) / self.first_price * 100.0,
            volatility=math.sqrt(self.range_sq_sum / (_FOUR_LN2 * self.panes)),
        )


def pane_index(ts_ms: int) -> int:
    """The pane a timestamp falls in."""
    return ts_ms // PANE_MS


def fold_windows(
    symbol: str, panes: dict[int, Pane], end_ms: int, lengths_panes: Iterable[int]
) -> dict[int, Figures]:
    """Figures of the windows ending at `end_ms`, one per length (in panes) that holds ticks.

    One pass over the panes, newest first, serves every length: the shorter windows are
    prefixes of the longer ones.
    """
    wanted = sorted(set(lengths_panes))
    end_index = end_ms // PANE_MS
    fold = _Fold()
    result: dict[int, Figures] = {}
    age = 0
    for length in wanted:
        while age < length:
            pane = panes.get(end_index - 1 - age)
            if pane is not None:
                fold.add(pane)
            age += 1
        if fold.count:
            result[length] = fold.figures(symbol)
    return result
