"""A window's panes but its last, folded before the close; the last pane added at the close.

Closing a slide folds up to 90 panes per symbol (`dataflows.leaders.fold`). All but the last
are final once the watermark has passed the previous end (a tick older than the watermark is
late): `prepare_older` folds them while the partition waits for the last pane to end, and
`fold_with_older` adds each symbol's last pane when the window is due. The sums are the same
sequence of float additions (the older panes oldest first, then the last one), so the figures
are bit-identical to `fold_partition`'s, volatility included; a symbol that had no pane at the
preparation starts from 0.0, as an empty cell of the grid does.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dataflows.leaders.fold import (
    CHUNK_SYMBOLS,
    SUM_RANGE_SQUARE,
    SUMMED,
    Floats,
    PaneGrid,
    build_rows,
    sum_panes,
)
from dataflows.leaders.panes import (
    COUNT,
    FIRST_PRICE,
    HIGH,
    LAST_PRICE,
    LOW,
    RECORD,
    Figures,
    SymbolPanes,
)
from dataflows.leaders.specs import PANE_MS

_EMPTY_RECORD = array("d", [0.0] * RECORD)  # no pane: count and sums 0, no extremes
_EMPTY_RECORD[HIGH], _EMPTY_RECORD[LOW] = -math.inf, math.inf


@dataclass(frozen=True)
class Older:
    """Per symbol (rows of each array), the panes of a window but its last: the sums (`SUMMED`
    order, added oldest first), how many panes have ticks, the first pane's first price and
    the last pane's last price (meaningless where no pane has ticks), lowest and highest."""

    sums: Floats
    pane_counts: npt.NDArray[np.intp]
    firsts: Floats
    lasts: Floats
    lows: Floats
    highs: Floats

    @classmethod
    def concat(cls, chunks: list[Older]) -> Older:
        return cls(
            *(
                np.concatenate([getattr(chunk, name) for chunk in chunks])
                for name in ("sums", "pane_counts", "firsts", "lasts", "lows", "highs")
            )
        )


@dataclass(frozen=True)
class OlderPanes:
    """The windows ending at `end_ms` folded ahead of their close, but for their last pane.

    The panes before a window's last one are final once the watermark has passed
    `end_ms - PANE_MS` (a tick older than the watermark is late), that is once the previous
    end has closed: folding them then, while the partition waits for the last pane to end,
    leaves the close to add one pane per symbol (`fold_with_older`) instead of up to 90.
    Sums stay the same sequence of additions (older panes oldest first, then the last), so
    the figures are bit-identical to `fold_partition`'s."""

    end_ms: int
    symbols: dict[str, int]  # symbol -> row in each `Older`
    older: dict[int, Older]  # per length in panes (> 1: a 1-pane window has no older pane)


def prepare_older(
    panes: Mapping[str, SymbolPanes], end_ms: int, lengths_panes: Sequence[int]
) -> OlderPanes:
    """Fold the panes of the windows ending at `end_ms` but their last (see `OlderPanes`)."""
    wanted = sorted(length for length in set(lengths_panes) if length > 1)
    items = list(panes.items())
    chunks: dict[int, list[Older]] = {length: [] for length in wanted}
    if wanted:
        for at in range(0, len(items), CHUNK_SYMBOLS):
            grid = PaneGrid.of(items[at : at + CHUNK_SYMBOLS], end_ms // PANE_MS, wanted[-1])
            for length in wanted:
                chunks[length].append(older_of(grid, length))
    return OlderPanes(
        end_ms,
        {symbol: row for row, (symbol, _) in enumerate(items)},
        {length: Older.concat(parts) for length, parts in chunks.items() if parts},
    )


def fold_with_older(
    panes: Mapping[str, SymbolPanes], prepared: OlderPanes, lengths_panes: Sequence[int]
) -> dict[int, list[Figures]]:
    """`fold_partition(panes, prepared.end_ms, lengths_panes)`, from the prepared older panes
    and each symbol's last pane."""
    wanted = sorted(set(lengths_panes))
    result: dict[int, list[Figures]] = {length: [] for length in wanted}
    if not wanted or not panes:
        return result
    symbols = list(panes)
    last = _last_pane_records(panes.values(), prepared.end_ms // PANE_MS - 1)
    last_sums = np.empty((len(symbols), len(SUMMED)), dtype=np.float64)
    last_sums[:, :SUM_RANGE_SQUARE] = last[:, SUMMED[:SUM_RANGE_SQUARE]]
    last_present = last[:, COUNT] > 0
    with np.errstate(divide="ignore", invalid="ignore"):  # (no pane: inf / inf, not used)
        last_sums[:, SUM_RANGE_SQUARE] = np.where(
            last_present, np.square(np.log(last[:, HIGH] / last[:, LOW])), 0.0
        )
    known = np.array([prepared.symbols.get(symbol, -1) for symbol in symbols], dtype=np.intp)
    is_known = known >= 0
    for length in wanted:
        older = prepared.older.get(length)
        if older is None:  # no older pane (a 1-pane window, or none had any): the last alone
            totals, pane_counts = last_sums.copy(), last_present.astype(np.intp)
            firsts, lasts = last[:, FIRST_PRICE], last[:, LAST_PRICE]
            lows, highs = last[:, LOW], last[:, HIGH]
        else:
            older_sums = np.zeros_like(last_sums)  # a symbol new since: empty cells, 0.0
            older_sums[is_known] = older.sums[known[is_known]]
            totals = older_sums + last_sums
            older_counts = np.where(is_known, older.pane_counts[known], 0)
            pane_counts = older_counts + last_present
            older_present = older_counts > 0
            firsts = np.where(older_present, older.firsts[known], last[:, FIRST_PRICE])
            lasts = np.where(last_present, last[:, LAST_PRICE], older.lasts[known])
            lows = np.minimum(np.where(is_known, older.lows[known], np.inf), last[:, LOW])
            highs = np.maximum(np.where(is_known, older.highs[known], -np.inf), last[:, HIGH])
        rows = np.flatnonzero(pane_counts)
        result[length] = (
            build_rows(
                [symbols[row] for row in rows.tolist()],
                totals=totals[rows],
                pane_counts=pane_counts[rows],
                firsts=firsts[rows],
                lasts=lasts[rows],
                lows=lows[rows],
                highs=highs[rows],
            )
            if len(rows)
            else []
        )
    return result


def _last_pane_records(panes: Iterable[SymbolPanes], index: int) -> Floats:
    """Each symbol's record of pane `index` (a neutral record where it has none): the head,
    or the newest stored pane not after it."""
    flat = array("d")
    for symbol_panes in panes:
        record = symbol_panes.record_of(index)
        flat.extend(_EMPTY_RECORD if record is None else record)
    return np.frombuffer(flat, dtype=np.float64).reshape(-1, RECORD)


def older_of(grid: PaneGrid, length: int) -> Older:
    """What the window of the last `length` panes holds before its last pane, per symbol
    (the part `fold_with_older` completes at the close)."""
    horizon = grid.cells.shape[1]
    first_pane = horizon - length
    window = grid.cells[:, first_pane : horizon - 1]
    present = window[:, :, COUNT] > 0
    firsts = window[:, :, FIRST_PRICE][np.arange(len(window)), present.argmax(axis=1)]
    lasts = window[:, :, LAST_PRICE][
        np.arange(len(window)), length - 2 - present[:, ::-1].argmax(axis=1)
    ]
    return Older(
        sum_panes(grid.summed, first_pane, horizon - 1),
        present.sum(axis=1),
        firsts,
        lasts,
        window[:, :, LOW].min(axis=1),
        window[:, :, HIGH].max(axis=1),
    )
