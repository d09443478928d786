"""A partition's window figures at one window end, every symbol at once (numpy).

Closing a 10-second slide folds every symbol's panes into up to three windows. Per symbol in
Python that cost 60-80 µs (a 10,000-symbol partition: about a second of CPU per slide, the
whole latency budget several times over). Here symbols are taken `CHUNK_SYMBOLS` at a time:
their pane records are copied into a grid (symbol x pane position, empty cells neutral: 0 for
sums, -inf/+inf for extremes), and every figure is computed over the chunk with vector
operations. Chunks keep the temporaries to a few hundred kilobytes, which the allocator
reuses (a grid of every symbol at once would be tens of megabytes, and the heap keeps such
peaks).

- sums (count, price, notional, size, squared log ranges) add the grid's panes oldest
  first, starting from the window's first pane, so each symbol's sum is the same sequence of
  float additions as `sum()` over its panes (an empty cell adds 0.0, which changes nothing): the
  figures do not depend on how many symbols share the partition;
- minimum and maximum are order-free; first and last are the first and last pane's;
- a pane's `log(high / low) ** 2` is numpy's log and square, which may differ from libm's in
  the last bit (volatility only; every worker and restart computes it the same way).

Most of that work can be done before the close: `dataflows.leaders.fold_ahead`.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
from stockstream.slots import slot_builder

Floats = npt.NDArray[np.float64]

CHUNK_SYMBOLS = 32
"""Symbols folded together. Measured at 10,000 symbols (`bench.memory`): 256 a chunk closed a
slide in about 0.42 s of CPU but its megabytes of temporaries stayed in the heap (RSS 10.4-10.9
KB a symbol, over the 10 KB target); 64: 0.28 s, 10.0 KB; 32: 0.35 s, 9.8 KB; 16: 0.69 s (numpy's
per-call cost dominates), 9.8 KB. A 32-symbol grid is about 300 KB."""

RANGE_SQUARE = RECORD  # a cell: the pane's record, then its squared log range
_CELL = RECORD + 1
SUMMED = [COUNT, PRICE_SUM, NOTIONAL_SUM, SIZE_SUM, RANGE_SQUARE]  # what windows add up
SUM_COUNT, SUM_PRICE, SUM_NOTIONAL, SUM_SIZE, SUM_RANGE_SQUARE = range(len(SUMMED))
_build_figures = slot_builder(Figures)  # `Figures(...)`, faster: 10,000s per slide


def fold_partition(
    panes: Mapping[str, SymbolPanes], end_ms: int, lengths_panes: Sequence[int]
) -> dict[int, list[Figures]]:
    """Figures of the windows ending at `end_ms`, per length in panes: one `Figures` per
    symbol with a tick in the window, symbols in `panes` order."""
    wanted = sorted(set(lengths_panes))
    result: dict[int, list[Figures]] = {length: [] for length in wanted}
    if not wanted:
        return result
    items = list(panes.items())
    for at in range(0, len(items), CHUNK_SYMBOLS):
        grid = PaneGrid.of(items[at : at + CHUNK_SYMBOLS], end_ms // PANE_MS, wanted[-1])
        for length in wanted:
            result[length].extend(grid.figures(length))
    return result


@dataclass(frozen=True)
class PaneGrid:
    """Some symbols' panes in the `horizon` panes before a window end, as pane records:
    `cells[c, k]` is the record of `symbols[c]`'s pane `end_index - horizon + k` (count 0,
    sums 0, high -inf and low +inf where the symbol has no such pane), followed by the pane's
    squared log range. `summed` is what windows add up, pane-major: `summed[k]` holds pane k
    of every symbol, so adding one pane of all symbols is one contiguous vector add."""

    symbols: list[str]
    cells: Floats  # (symbols, horizon, RECORD + 1)
    summed: Floats  # (horizon, symbols, len(SUMMED))

    @classmethod
    def of(cls, items: Sequence[tuple[str, SymbolPanes]], end_index: int, horizon: int) -> PaneGrid:
        records, owners = _gather(items)
        panes = records[:, INDEX].astype(np.intp) - (end_index - horizon)
        inside = (panes >= 0) & (panes < horizon)
        if not inside.all():
            records, owners, panes = records[inside], owners[inside], panes[inside]
        cells = np.zeros((len(items), horizon, _CELL), dtype=np.float64)
        cells[:, :, HIGH] = -np.inf
        cells[:, :, LOW] = np.inf
        flat = cells.reshape(-1, _CELL)
        at = owners * horizon + panes  # increasing: records come symbol by symbol, in order
        flat[at, :RECORD] = records
        flat[at, RANGE_SQUARE] = np.square(np.log(records[:, HIGH] / records[:, LOW]))
        summed = np.ascontiguousarray(cells[:, :, SUMMED].transpose(1, 0, 2))
        return cls([symbol for symbol, _ in items], cells, summed)

    def figures(self, length: int) -> list[Figures]:
        """The figures of the window of the last `length` panes, for each symbol with a pane
        in it."""
        horizon = self.cells.shape[1]
        first_pane = horizon - length
        window = self.cells[:, first_pane:]
        present = window[:, :, COUNT] > 0
        pane_counts = present.sum(axis=1)
        rows = np.flatnonzero(pane_counts)
        if not len(rows):
            return []
        totals = sum_panes(self.summed, first_pane, horizon)[rows]
        present = present[rows]
        return build_rows(
            [self.symbols[row] for row in rows.tolist()],
            totals=totals,
            pane_counts=pane_counts[rows],
            firsts=window[rows, present.argmax(axis=1), FIRST_PRICE],
            lasts=window[rows, length - 1 - present[:, ::-1].argmax(axis=1), LAST_PRICE],
            lows=window[rows, :, LOW].min(axis=1),
            highs=window[rows, :, HIGH].max(axis=1),
        )


def sum_panes(summed: Floats, first_pane: int, stop_pane: int) -> Floats:
    """The sums of panes `first_pane` to `stop_pane - 1` of each symbol, added oldest first:
    the order of `sum()` over the symbol's panes."""
    totals = summed[first_pane].copy()
    for pane in range(first_pane + 1, stop_pane):
        totals += summed[pane]
    return totals


def build_rows(
    symbols: list[str],
    *,
    totals: Floats,
    pane_counts: npt.NDArray[np.intp],
    firsts: Floats,
    lasts: Floats,
    lows: Floats,
    highs: Floats,
) -> list[Figures]:
    """One `Figures` per symbol from its window's sums (`SUMMED` order), number of panes
    with ticks, first and last price, and extremes."""
    counts = totals[:, SUM_COUNT]
    size_sums = totals[:, SUM_SIZE]
    with np.errstate(divide="ignore", invalid="ignore"):
        vwaps = totals[:, SUM_NOTIONAL] / size_sums
    means = totals[:, SUM_PRICE] / counts
    gains = (lasts - firsts) / firsts * 100.0
    volatilities = np.sqrt(totals[:, SUM_RANGE_SQUARE] / (FOUR_LN2 * pane_counts))
    return [
        _build_figures(
            symbol,
            int(count),
            mean,
            low,
            high,
            first,
            last,
            vwap if size_sum > 0 else None,
            gain,
            volatility,
        )
        for symbol, count, mean, low, high, first, last, vwap, size_sum, gain, volatility in zip(
            symbols,
            counts.tolist(),
            means.tolist(),
            lows.tolist(),
            highs.tolist(),
            firsts.tolist(),
            lasts.tolist(),
            vwaps.tolist(),
            size_sums.tolist(),
            gains.tolist(),
            volatilities.tolist(),
            strict=True,
        )
    ]


def _gather(items: Sequence[tuple[str, SymbolPanes]]) -> tuple[Floats, npt.NDArray[np.intp]]:
    """The symbols' pane records, oldest first within a symbol: (records: n x RECORD, the
    position in `items` of each record's symbol)."""
    flat = array("d")
    record_counts = []
    record_bytes = RECORD * flat.itemsize
    for _, symbol_panes in items:
        before = len(flat)
        lo, hi = symbol_panes.lo, symbol_panes.hi
        if hi > lo:  # a copy of the records in use, straight from the buffer
            flat.frombytes(
                memoryview(symbol_panes.data).cast("B")[lo * record_bytes : hi * record_bytes]
            )
        head = symbol_panes.head
        if head is not None:
            flat.extend(head)
        record_counts.append((len(flat) - before) // RECORD)
    records = np.frombuffer(flat, dtype=np.float64).reshape(-1, RECORD)
    return records, np.repeat(np.arange(len(items), dtype=np.intp), record_counts)
