"""The per-symbol fold the engine used before `dataflows.leaders.fold` (one symbol's panes
in plain Python): the reference `fold_partition` is checked against."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from dataflows.leaders.panes import (
    COUNT,
    FIRST_PRICE,
    FOUR_LN2,
    HIGH,
    INDEX,
    LAST_PRICE,
    LOW,
    NOTIONAL_SUM,
    PRICE_SUM,
    RECORD,
    SIZE_SUM,
    Figures,
    SymbolPanes,
)
from dataflows.leaders.specs import PANE_MS


def fold_windows(
    symbol: str, panes: SymbolPanes, end_ms: int, lengths_panes: Iterable[int]
) -> dict[int, Figures]:
    """Figures of the windows ending at `end_ms`, one per length (in panes) that holds ticks.

    The panes of the longest window are sliced out once, field by field; each shorter window
    is a suffix of those slices, so the sums, extremes, first and last run in C over at most
    one window's panes.
    """
    wanted = sorted(set(lengths_panes))
    end_index = end_ms // PANE_MS
    if panes.hi == panes.lo and panes.head is not None:  # one pane: a sparse symbol's usual case
        return _fold_one(symbol, panes.head, end_index, wanted)
    values = panes.flat()
    indexes = values[INDEX::RECORD]
    stop = bisect_left(indexes, end_index)
    start = bisect_left(indexes, end_index - wanted[-1], 0, stop)
    if start == stop:
        return {}
    segment = values[start * RECORD : stop * RECORD]
    indexes = segment[INDEX::RECORD]
    counts, price_sums = segment[COUNT::RECORD], segment[PRICE_SUM::RECORD]
    notionals, sizes = segment[NOTIONAL_SUM::RECORD], segment[SIZE_SUM::RECORD]
    highs, lows = segment[HIGH::RECORD], segment[LOW::RECORD]
    firsts, lasts = segment[FIRST_PRICE::RECORD], segment[LAST_PRICE::RECORD]
    log = math.log
    range_squares = [log(high / low) ** 2 for high, low in zip(highs, lows, strict=True)]
    panes_in_segment = len(indexes)
    result: dict[int, Figures] = {}
    for length in wanted:
        first_pane = bisect_left(indexes, end_index - length)
        if first_pane == panes_in_segment:
            continue
        count = int(sum(counts[first_pane:]))
        size_sum = sum(sizes[first_pane:])
        first_price, last_price = firsts[first_pane], lasts[-1]
        result[length] = Figures(
            symbol=symbol,
            count=count,
            mean=sum(price_sums[first_pane:]) / count,
            min=min(lows[first_pane:]),
            max=max(highs[first_pane:]),
            first=first_price,
            last=last_price,
            vwap=sum(notionals[first_pane:]) / size_sum if size_sum > 0 else None,
            gain_pct=(last_price - first_price) / first_price * 100.0,
            volatility=math.sqrt(
                sum(range_squares[first_pane:]) / (FOUR_LN2 * (panes_in_segment - first_pane))
            ),
        )
    return result


def _fold_one(
    symbol: str, pane: Sequence[float], end_index: int, wanted: list[int]
) -> dict[int, Figures]:
    """`fold_windows` for a symbol whose only pane is `pane`."""
    index = pane[INDEX]
    if index >= end_index:
        return {}
    count = int(pane[COUNT])
    first_price, last_price = pane[FIRST_PRICE], pane[LAST_PRICE]
    size_sum = pane[SIZE_SUM]
    figures = Figures(
        symbol=symbol,
        count=count,
        mean=pane[PRICE_SUM] / count,
        min=pane[LOW],
        max=pane[HIGH],
        first=first_price,
        last=last_price,
        vwap=pane[NOTIONAL_SUM] / size_sum if size_sum > 0 else None,
        gain_pct=(last_price - first_price) / first_price * 100.0,
        volatility=math.sqrt(math.log(pane[HIGH] / pane[LOW]) ** 2 / FOUR_LN2),
    )
    return {length: figures for length in wanted if index >= end_index - length}
