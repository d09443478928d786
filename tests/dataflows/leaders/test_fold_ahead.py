"""`prepare_older` + `fold_with_older` (older panes folded ahead, the last pane at the close)
against `fold_partition` (every pane at the close): the same figures, bit for bit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.leaders.fold import fold_partition
from dataflows.leaders.fold_ahead import fold_with_older, prepare_older
from dataflows.leaders.panes import SymbolPanes
from dataflows.leaders.specs import PANE_MS
from tests.dataflows.leaders.test_fold import Tick, build, ticks_strategy


@settings(max_examples=300, deadline=None)
@given(
    before=ticks_strategy,
    after=ticks_strategy,
    end_index=st.integers(2, 45),
    lengths=st.lists(st.sampled_from([1, 2, 3, 6, 30]), min_size=1, max_size=4),
)
def test_prepared_older_panes_then_the_last_equal_the_whole_fold(
    before: list[Tick], after: list[Tick], end_index: int, lengths: list[int]
) -> None:
    """Folding a window's older panes ahead (`prepare_older`, once the watermark has passed
    them) and its last pane at the close (`fold_with_older`) gives the same figures, bit for
    bit, volatility included, as folding every pane at the close; whatever arrives between
    the two in the last pane or after it, from known or new symbols."""
    horizon = max(lengths)
    end_ms = end_index * PANE_MS
    last_pane_ms = end_ms - PANE_MS
    older = [t for t in before if t[1] < last_pane_ms]
    later = [(s, last_pane_ms + ts % (3 * PANE_MS), p, z) for s, ts, p, z in after]
    panes = build(older + before[: len(before) // 3], horizon, end_index - horizon)
    prepared = prepare_older(panes, end_ms, lengths)
    for symbol, ts_ms, price, size in later:
        panes.setdefault(symbol, SymbolPanes(horizon + 1)).add(price, size, ts_ms)
    got = fold_with_older(panes, prepared, lengths)
    want = fold_partition(panes, end_ms, lengths)
    assert got == want
