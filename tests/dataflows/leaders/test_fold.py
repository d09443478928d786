"""`fold_partition` (every symbol at once, numpy) against the per-symbol fold it replaced
(`fold_reference.fold_windows`): the same symbols in the same order, every figure bit-identical
but volatility (numpy's log and square: within a few ulps)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.leaders.fold import fold_partition
from dataflows.leaders.panes import Figures, SymbolPanes
from dataflows.leaders.specs import PANE_MS
from tests.dataflows.leaders.fold_reference import fold_windows

Tick = tuple[str, int, float, float | None]  # (symbol, ts_ms, price, size)

EXACT = ("symbol", "count", "mean", "min", "max", "first", "last", "vwap", "gain_pct")


def build(ticks: list[Tick], horizon_panes: int, trim_from_index: int) -> dict[str, SymbolPanes]:
    """Panes as the engine holds them: one `SymbolPanes` per symbol, trimmed to the horizon."""
    panes: dict[str, SymbolPanes] = {}
    for symbol, ts_ms, price, size in ticks:
        panes.setdefault(symbol, SymbolPanes(horizon_panes + 1)).add(price, size, ts_ms)
    for symbol_panes in panes.values():
        symbol_panes.trim(trim_from_index)
    return {symbol: p for symbol, p in panes.items() if p}


def reference(
    panes: dict[str, SymbolPanes], end_ms: int, lengths: list[int]
) -> dict[int, list[Figures]]:
    rows: dict[int, list[Figures]] = {length: [] for length in sorted(set(lengths))}
    for symbol, symbol_panes in panes.items():
        for length, figures in fold_windows(symbol, symbol_panes, end_ms, lengths).items():
            rows[length].append(figures)
    return rows


def assert_same(got: dict[int, list[Figures]], want: dict[int, list[Figures]]) -> None:
    assert sorted(got) == sorted(want)
    for length, want_rows in want.items():
        got_rows = got[length]
        assert [r.symbol for r in got_rows] == [r.symbol for r in want_rows], length
        for g, w in zip(got_rows, want_rows, strict=True):
            for name in EXACT:
                assert getattr(g, name) == getattr(w, name), (length, g, w, name)
            assert type(g.count) is int
            assert math.isclose(g.volatility, w.volatility, rel_tol=1e-14, abs_tol=1e-300), (
                length,
                g,
                w,
            )


ticks_strategy = st.lists(
    st.tuples(
        st.sampled_from(["AIG", "BAC", "IBM", "SPY", "X"]),
        st.integers(0, 40 * PANE_MS),
        st.floats(1.0, 500.0, allow_nan=False, allow_infinity=False),
        st.one_of(st.none(), st.floats(0.5, 1000.0), st.just(0.0)),
    ),
    max_size=300,
)


@settings(max_examples=300, deadline=None)
@given(
    ticks=ticks_strategy,
    end_index=st.integers(1, 45),
    lengths=st.lists(st.sampled_from([1, 3, 6, 30]), min_size=1, max_size=3),
)
def test_equals_the_per_symbol_fold(ticks: list[Tick], end_index: int, lengths: list[int]) -> None:
    horizon = max(lengths)
    panes = build(ticks, horizon, end_index - horizon)
    end_ms = end_index * PANE_MS
    assert_same(fold_partition(panes, end_ms, lengths), reference(panes, end_ms, lengths))


CASES = [
    # (name, ticks, end_index, lengths)
    ("no symbols", [], 10, [6]),
    ("one pane, sizes", [("A", 5_000, 10.0, 2.0), ("A", 6_000, 12.0, 1.0)], 1, [1, 6]),
    ("no sizes: vwap None", [("A", 5_000, 10.0, None), ("B", 15_000, 3.0, None)], 2, [6]),
    ("zero sizes: vwap None", [("A", 5_000, 10.0, 0.0)], 1, [6]),
    ("only panes at or after the end", [("A", 20_000, 10.0, 1.0)], 2, [6]),
    (
        "pane older than the shortest length",
        [("A", 0, 10.0, 1.0), ("A", 55_000, 11.0, 1.0), ("B", 0, 1.0, None)],
        6,
        [1, 6],
    ),
    (
        "out of order within and across panes",
        [
            ("A", 9_000, 3.0, 1.0),
            ("A", 1_000, 5.0, 1.0),
            ("A", 12_000, 4.0, None),
            ("A", 3_000, 9.0, 2.0),
        ],
        2,
        [1, 2],
    ),
    (
        "sparse and dense symbols",
        [("S", 1_000, 2.0, None)]
        + [("D", i * 1_000, 100.0 + i % 7, float(i % 3)) for i in range(300)],
        30,
        [6, 30],
    ),
]


@pytest.mark.parametrize(
    ("ticks", "end_index", "lengths"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_cases(ticks: list[Tick], end_index: int, lengths: list[int]) -> None:
    horizon = max(lengths)
    panes = build(ticks, horizon, end_index - horizon)
    end_ms = end_index * PANE_MS
    got = fold_partition(panes, end_ms, lengths)
    assert_same(got, reference(panes, end_ms, lengths))


def test_sums_in_each_symbols_pane_order() -> None:
    """A sum whose value depends on the order of its float additions: the fold must add the
    panes oldest first, as `sum()` over the symbol's panes does, whatever the other symbols."""
    prices = [1e16, 1.0, 1.0, -1e16 + 3.0]
    ticks: list[Tick] = [("A", i * PANE_MS, p, None) for i, p in enumerate(prices)]
    ticks += [("B", 3 * PANE_MS, 7.0, None)]
    panes = build(ticks, 4, 0)
    rows = fold_partition(panes, 4 * PANE_MS, [4])[4]
    assert [r.symbol for r in rows] == ["A", "B"]
    want = sum(prices) / 4
    assert rows[0].mean == want
    assert want != math.fsum(prices) / 4  # the case is order-sensitive
