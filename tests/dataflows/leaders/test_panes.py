"""`SymbolPanes`' buffer (head record + preallocated records that slide and grow) against a plain
dict of pane records, through adds in and out of order, trims and snapshots."""

from __future__ import annotations

import pickle
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflows.leaders.panes import BUSY_PANE_TICKS, QUIET_PANE_TICKS, RECORD, SymbolPanes
from dataflows.leaders.specs import PANE_MS

Op = tuple[str, int, float, float | None]  # ("add", ts_ms, price, size) | ("trim", index, ...)


def reference_add(
    panes: dict[int, list[float]], price: float, size: float | None, ts_ms: int
) -> None:
    index = ts_ms // PANE_MS
    sized = 0.0 if size is None else size
    record = panes.get(index)
    if record is None:
        panes[index] = [
            index,
            1,
            price,
            price * sized,
            sized,
            price,
            price,
            ts_ms,
            price,
            ts_ms,
            price,
        ]
        return
    record[1] += 1
    record[2] += price
    if size is not None:
        record[3] += price * size
        record[4] += size
    record[5], record[6] = max(record[5], price), min(record[6], price)
    if ts_ms < record[7]:
        record[7], record[8] = ts_ms, price
    if ts_ms >= record[9]:
        record[9], record[10] = ts_ms, price


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.integers(0, 40 * PANE_MS),
            st.sampled_from([1.0, 2.5, 3.25]),
            st.sampled_from([None, 100.0, 0.5]),
        ),
        st.tuples(st.just("trim"), st.integers(0, 40), st.just(0.0), st.none()),
        st.tuples(st.just("snapshot"), st.just(0), st.just(0.0), st.none()),
    ),
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(ops=ops, capacity_hint=st.sampled_from([1, 2, 3, 8, 96]))
def test_same_panes_as_a_dict_of_records(ops: list[Op], capacity_hint: int) -> None:
    panes = SymbolPanes(capacity_hint)
    reference: dict[int, list[float]] = {}
    for kind, at, price, size in ops:
        if kind == "add":
            panes.add(price, size, at)
            reference_add(reference, price, size, at)
        elif kind == "trim":
            panes.trim(at)
            reference = {i: r for i, r in reference.items() if i >= at}
        else:
            panes = pickle.loads(pickle.dumps(panes))  # noqa: S301 - our own bytes
        want = [value for index in sorted(reference) for value in reference[index]]
        assert panes.flat() == want
        assert len(panes) == len(reference) and bool(panes) == bool(reference)
        if reference:
            assert panes.oldest_index == min(reference)
        for index in (*reference, 41):
            record = panes.record_of(index)
            assert (None if record is None else list(record)) == reference.get(index)


@pytest.mark.parametrize(
    ("hint", "panes_kept"),
    [
        (96, 1),
        (96, 30),
        (96, 91),
        (91, 91),  # the engine's 15-minute horizon + 1: 90 panes and the head, trimmed each pane
    ],
)
def test_a_dense_symbol_allocates_its_buffer_a_few_times(hint: int, panes_kept: int) -> None:
    """A symbol with a tick in every pane and its oldest panes trimmed: the buffer stops
    growing at the hint and slides from then on."""
    panes = SymbolPanes(hint)
    buffers = [panes.data]  # each buffer the symbol had (kept alive, so none is a reused id)
    for index in range(2000):
        panes.add(1.0, None, index * PANE_MS)
        panes.trim(index - panes_kept + 1)
        if panes.data is not buffers[-1]:
            buffers.append(panes.data)
        assert len(panes) == min(index + 1, panes_kept)
    assert len(panes.data) // RECORD <= hint
    assert len(buffers) <= 5  # empty, then 1, 4, 16 and `hint` panes at most


def test_a_quiet_symbol_keeps_one_head_for_good() -> None:
    """A quiet symbol's new pane overwrites its head array in place: no allocation a pane
    that would outlive the batch of ticks around it (see the class docstring)."""
    panes = SymbolPanes(8)
    panes.add(1.0, None, 0)  # a list until a pane shows the symbol quiet
    panes.add(2.0, None, PANE_MS)
    head = panes.head
    assert isinstance(head, array)
    for index in range(2, 20):
        panes.add(2.0 + index, 10.0, index * PANE_MS + 5)
        panes.trim(index - 3)
        assert panes.head is head
    assert head[0] == 19 and head[10] == 21.0


@pytest.mark.parametrize(
    ("ticks_per_pane", "shapes"),
    [
        # each pane's tick count; the head's shape in panes 1 to 6, from the pane before (pane 0's
        # is a list)
        ([1, 1, 1, 1, 1, 1, 1], [array] * 6),
        ([3, 3, 3, 3, 3, 3, 3], [array] * 6),
        ([4, 4, 4, 4, 4, 4, 4], [list] * 6),  # never quiet: a list from the start
        (
            [1, BUSY_PANE_TICKS - 1, 1, BUSY_PANE_TICKS, 5, 4, 3],
            [array, array, array, list, list, list],
        ),
        (
            [BUSY_PANE_TICKS, QUIET_PANE_TICKS - 1, 20, 20, 2, 1, 1],
            [list, array, list, list, array, array],
        ),
    ],
)
def test_busy_symbols_get_a_list_head_and_quiet_ones_an_array(
    ticks_per_pane: list[int], shapes: list[type]
) -> None:
    panes = SymbolPanes(8)
    reference: dict[int, list[float]] = {}
    seen = []
    for index, count in enumerate(ticks_per_pane):
        for k in range(count):
            panes.add(1.0 + k % 3, 10.0, index * PANE_MS + k)
            reference_add(reference, 1.0 + k % 3, 10.0, index * PANE_MS + k)
        seen.append(type(panes.head))
    assert seen == [list, *shapes]
    assert panes.flat() == [v for index in sorted(reference) for v in reference[index]]


def test_a_snapshot_whose_head_is_a_list_resumes() -> None:
    """A snapshot's list head (a busy symbol's, or any symbol's before heads could be arrays)
    goes on taking ticks and moves into the buffer like an array head."""
    older = SymbolPanes(8)
    older.add(1.0, 100.0, 0)
    older.add(2.0, None, PANE_MS)
    data, head, hint = older.__getstate__()
    assert head is not None
    restored = SymbolPanes.__new__(SymbolPanes)
    restored.__setstate__((data, [int(v) if v.is_integer() else v for v in head], hint))
    restored.add(3.0, None, PANE_MS + 1)
    restored.add(4.0, None, 2 * PANE_MS)
    older.add(3.0, None, PANE_MS + 1)
    older.add(4.0, None, 2 * PANE_MS)
    assert restored.flat() == older.flat() and len(restored) == 3
