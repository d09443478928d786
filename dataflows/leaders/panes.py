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


def pane_index(ts_ms: int) -> int:
    """The pane a timestamp falls in."""
    return ts_ms // PANE_MS


def fold_windows(
    symbol: str, panes: dict[int, Pane], end_ms: int, lengths_panes: Iterable[int]
) -> dict[int, Figures]:
    """Figures of the windows ending at `end_ms`, one per length (in panes) that holds ticks.

    One pass over the panes that exist, newest first, serves every length: the shorter
    windows are prefixes of the longer ones. The running fold is kept in local variables
    (this loop is the engine's hot path when windows close).
    """
    wanted = sorted(set(lengths_panes))
    end_index = end_ms // PANE_MS
    newest_first = sorted(panes, reverse=True)
    position, available = 0, len(newest_first)
    while position < available and newest_first[position] >= end_index:
        position += 1
    count = 0
    price_sum = notional_sum = size_sum = range_sq_sum = 0.0
    high, low = -math.inf, math.inf
    first_price = last_price = 0.0
    folded = 0
    result: dict[int, Figures] = {}
    log = math.log
    for length in wanted:
        oldest = end_index - length
        while position < available:
            index = newest_first[position]
            if index < oldest:
                break
            pane = panes[index]
            if count == 0:
                last_price = pane.last_price
            count += pane.count
            price_sum += pane.price_sum
            notional_sum += pane.notional_sum
            size_sum += pane.size_sum
            if pane.high > high:
                high = pane.high
            if pane.low < low:
                low = pane.low
            first_price = pane.first_price
            log_range = log(pane.high / pane.low)
            range_sq_sum += log_range * log_range
            folded += 1
            position += 1
        if count:
            result[length] = Figures(
                symbol=symbol,
                count=count,
                mean=price_sum / count,
                min=low,
                max=high,
                first=first_price,
                last=last_price,
                vwap=notional_sum / size_sum if size_sum > 0 else None,
                gain_pct=(last_price - first_price) / first_price * 100.0,
                volatility=math.sqrt(range_sq_sum / (_FOUR_LN2 * folded)),
            )
    return result
