"""Brute-force reference for the windows: every window computed straight from its ticks.

Slow on purpose and written from the definitions in the README, not from the engine's code:
lateness per partition in arrival order, then each window's ticks collected and folded.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dataflows.leaders.specs import WindowSpec
from stockstream.ticks import Tick


@dataclass(frozen=True)
class OracleRow:
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


@dataclass(frozen=True)
class OracleWindow:
    spec: str
    end_ms: int
    partial: bool
    leaders: tuple[tuple[str, float], ...]
    rows: dict[str, OracleRow]


def split_late(
    arrivals: Iterable[Tick], partition_of: Callable[[str], object], lateness_ms: int
) -> tuple[list[Tick], list[Tick]]:
    """(accepted, late): late means older than its partition's highest time minus lateness."""
    highest: dict[object, int] = {}
    accepted, late = [], []
    for tick in arrivals:
        partition = partition_of(tick.symbol)
        top = highest.get(partition)
        if top is not None and tick.ts_ms < top - lateness_ms:
            late.append(tick)
            continue
        highest[partition] = tick.ts_ms if top is None else max(top, tick.ts_ms)
        accepted.append(tick)
    return accepted, late


def window_row(symbol: str, ticks: list[Tick], end_ms: int, length_ms: int) -> OracleRow:
    ordered = sorted(ticks, key=lambda t: t.ts_ms)  # stable: ties keep arrival order
    prices = [t.price for t in ordered]
    sized = [(t.price, t.size) for t in ordered if t.size is not None]
    size_total = sum(size for _, size in sized)
    sub_intervals: dict[int, list[float]] = defaultdict(list)
    for t in ordered:
        sub_intervals[(t.ts_ms - (end_ms - length_ms)) // 10_000].append(t.price)
    squares = [math.log(max(p) / min(p)) ** 2 for p in sub_intervals.values()]
    return OracleRow(
        symbol=symbol,
        count=len(prices),
        mean=math.fsum(prices) / len(prices),
        min=min(prices),
        max=max(prices),
        first=prices[0],
        last=prices[-1],
        vwap=(
            math.fsum(price * size for price, size in sized) / size_total
            if size_total > 0
            else None
        ),
        gain_pct=(prices[-1] - prices[0]) / prices[0] * 100,
        volatility=math.sqrt(math.fsum(squares) / (4 * len(squares) * math.log(2))),
    )


def oracle_windows(
    accepted: list[Tick], specs: Iterable[WindowSpec], top_n: int = 3
) -> dict[tuple[str, int], OracleWindow]:
    """Every non-empty window of every spec, keyed by (spec name, end in ms)."""
    if not accepted:
        return {}
    first_ms = min(t.ts_ms for t in accepted)
    by_symbol: dict[str, list[Tick]] = defaultdict(list)
    for tick in accepted:
        by_symbol[tick.symbol].append(tick)
    result = {}
    for spec in specs:
        ends = sorted(
            {
                end
                for t in accepted
                for end in range(
                    (t.ts_ms // spec.slide_ms + 1) * spec.slide_ms,
                    t.ts_ms + spec.length_ms + 1,
                    spec.slide_ms,
                )
                if end - spec.length_ms <= t.ts_ms < end
            }
        )
        for end in ends:
            rows = {}
            for symbol, ticks in by_symbol.items():
                inside = [t for t in ticks if end - spec.length_ms <= t.ts_ms < end]
                if inside:
                    rows[symbol] = window_row(symbol, inside, end, spec.length_ms)
            ranked = sorted(rows.values(), key=lambda r: (-getattr(r, spec.score), r.symbol))
            result[(spec.name, end)] = OracleWindow(
                spec=spec.name,
                end_ms=end,
                partial=end - spec.length_ms < first_ms,
                leaders=tuple((r.symbol, getattr(r, spec.score)) for r in ranked[:top_n]),
                rows=rows,
            )
    return result
