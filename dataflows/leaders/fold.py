"""A partition's window figures at one window end, every symbol at once (numpy).

Closing a 10-second slide folds every symbol's panes into up to three windows. Per symbol in
Python that cost 60-80 µs (a 10,000-symbol partition: about a second of CPU per slide, the
whole latency budget several times over). Here the panes of all symbols are copied once into
one array of pane records, and every figure is computed over all symbols with vector
operations:

- sums (count, price, notional, size, squared log ranges) run pane by pane in each symbol's
  pane order, one vector add per pane position, so every sum is the same sequence of float
  additions as `sum()` over that symbol's panes: the figures do not depend on how many
  symbols share the partition;
- minimum and maximum are order-free; first and last are the first and last pane's;
- a pane's `log(high / low) ** 2` is numpy's log and square, which may differ from libm's in
  the last bit (volatility only; every worker and restart computes it the same way).
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence

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

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.intp]

# Columns of the summed block (one row per pane record): count, price, notional, size,
# squared log range.
_SUM_COUNT, _SUM_PRICE, _SUM_NOTIONAL, _SUM_SIZE, _SUM_RANGE_SQUARE = range(5)


def gather_records(panes: Mapping[str, SymbolPanes]) -> tuple[Floats, Ints]:
    """Every symbol's pane records, oldest first within a symbol, symbols in `panes` order:
    (records: n x RECORD, symbol position of each record)."""
    flat = array("d")
    record_counts = []
    record_bytes = RECORD * flat.itemsize
    for symbol_panes in panes.values():
        before = len(flat)
        lo, hi = symbol_panes.lo, symbol_panes.hi
        if hi > lo:  # a copy of the records in use, straight from the buffer
            flat.frombytes(memoryview(symbol_panes.data).cast("B")[
                lo * record_bytes : hi * record_bytes])
        head = symbol_panes.head
        if head is not None:
            flat.extend(head)
        record_counts.append((len(flat) - before) // RECORD)
    records = np.frombuffer(flat, dtype=np.float64).reshape(-1, RECORD)
    owners = np.repeat(np.arange(len(record_counts), dtype=np.intp), record_counts)
    return records, owners


def fold_partition(
    panes: Mapping[str, SymbolPanes], end_ms: int, lengths_panes: Sequence[int]
) -> dict[int, list[Figures]]:
    """Figures of the windows ending at `end_ms`, per length in panes: one `Figures` per
    symbol with a tick in the window, symbols in `panes` order."""
    wanted = sorted(set(lengths_panes))
    result: dict[int, list[Figures]] = {length: [] for length in wanted}
    if not panes or not wanted:
        return result
    records, owners = gather_records(panes)
    end_index = end_ms // PANE_MS
    indexes = records[:, INDEX]
    in_horizon = (indexes >= end_index - wanted[-1]) & (indexes < end_index)
    records, owners, indexes = records[in_horizon], owners[in_horizon], indexes[in_horizon]
    if not len(records):
        return result
    summed = _summed_columns(records)
    symbols = list(panes)
    for length in wanted:
        in_window = np.flatnonzero(indexes >= end_index - length)
        if len(in_window):
            result[length] = _window_figures(
                symbols, records[in_window], owners[in_window], summed[in_window]
            )
    return result


def _summed_columns(records: Floats) -> Floats:
    """The per-pane values that windows sum, one row per record (see `_SUM_*`)."""
    summed = np.empty((len(records), 5), dtype=np.float64)
    summed[:, _SUM_COUNT] = records[:, COUNT]
    summed[:, _SUM_PRICE] = records[:, PRICE_SUM]
    summed[:, _SUM_NOTIONAL] = records[:, NOTIONAL_SUM]
    summed[:, _SUM_SIZE] = records[:, SIZE_SUM]
    summed[:, _SUM_RANGE_SQUARE] = np.square(np.log(records[:, HIGH] / records[:, LOW]))
    return summed


def _window_figures(
    symbols: list[str], records: Floats, owners: Ints, summed: Floats
) -> list[Figures]:
    """One window's figures from its records (grouped by symbol, oldest pane first)."""
    starts = np.flatnonzero(np.concatenate(([True], owners[1:] != owners[:-1])))
    pane_counts = np.diff(np.append(starts, len(owners)))
    totals = _sums_in_pane_order(summed, starts, pane_counts)
    lows = np.minimum.reduceat(records[:, LOW], starts)
    highs = np.maximum.reduceat(records[:, HIGH], starts)
    firsts = records[starts, FIRST_PRICE]
    lasts = records[starts + pane_counts - 1, LAST_PRICE]
    counts = totals[:, _SUM_COUNT]
    size_sums = totals[:, _SUM_SIZE]
    with np.errstate(divide="ignore", invalid="ignore"):
        vwaps = totals[:, _SUM_NOTIONAL] / size_sums
    means = totals[:, _SUM_PRICE] / counts
    gains = (lasts - firsts) / firsts * 100.0
    volatilities = np.sqrt(totals[:, _SUM_RANGE_SQUARE] / (FOUR_LN2 * pane_counts))
    vwap_or_none = [
        vwap if size_sum > 0 else None
        for vwap, size_sum in zip(vwaps.tolist(), size_sums.tolist(), strict=True)
    ]
    return [
        Figures(symbols[owner], int(count), mean, low, high, first, last, vwap, gain, volatility)
        for owner, count, mean, low, high, first, last, vwap, gain, volatility in zip(
            owners[starts].tolist(), counts.tolist(), means.tolist(), lows.tolist(),
            highs.tolist(), firsts.tolist(), lasts.tolist(), vwap_or_none, gains.tolist(),
            volatilities.tolist(), strict=True,
        )
    ]


def _sums_in_pane_order(summed: Floats, starts: Ints, pane_counts: Ints) -> Floats:
    """Each symbol's column sums, added pane after pane from 0.0 (as `sum()` does): one
    vector add per pane position, over the symbols that have a pane there."""
    totals = np.zeros((len(starts), summed.shape[1]), dtype=np.float64)
    order = np.argsort(-pane_counts, kind="stable")  # most panes first
    sorted_counts = pane_counts[order]
    for position in range(int(sorted_counts[0]) if len(order) else 0):
        still = order[: np.searchsorted(-sorted_counts, -position, side="left")]
        totals[still] += summed[starts[still] + position]
    return totals
