"""`slot_builder(cls)` builds the very object `cls(...)` builds, and refuses classes it would
build wrongly."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflows.leaders.panes import Figures
from stockstream.slots import slot_builder
from stockstream.ticks import Tick
from tests.stockstream.test_ticks import VALID_TICKS

FLOATS = st.floats(allow_nan=False)


@given(tick=VALID_TICKS)
def test_tick_built_equals_init(tick: Tick) -> None:
    values = (tick.symbol, tick.price, tick.ts_ms, tick.size, tick.source, tick.ingest_ts_ms)
    built = slot_builder(Tick)(*values)
    assert type(built) is Tick
    assert built == Tick(*values) and hash(built) == hash(Tick(*values))
    assert pickle.loads(pickle.dumps(built)) == built  # noqa: S301 - our own bytes, as recovery
    assert replace(built, price=1.0) == replace(tick, price=1.0)


@given(values=st.tuples(st.text(max_size=8), st.integers(0, 10**6), FLOATS, FLOATS, FLOATS,
                        FLOATS, FLOATS, st.none() | FLOATS, FLOATS, FLOATS))
def test_figures_built_equals_init(values: tuple) -> None:
    built = slot_builder(Figures)(*values)
    assert built == Figures(*values)
    assert pickle.loads(pickle.dumps(built)) == built  # noqa: S301 - our own bytes, as recovery


def test_built_object_stays_frozen() -> None:
    tick = slot_builder(Tick)("AIG", 1.0, 5, None, "", None)
    with pytest.raises(AttributeError):
        tick.price = 2.0  # type: ignore[misc]


def test_wrong_number_of_values_is_an_error() -> None:
    with pytest.raises(TypeError):
        slot_builder(Tick)("AIG", 1.0, 5)


@dataclass(frozen=True)
class NoSlots:
    x: int


@dataclass(frozen=True, slots=True)
class Checked:
    x: int

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("negative")


class NotADataclass:
    __slots__ = ("x",)


@pytest.mark.parametrize("cls", [NoSlots, Checked, NotADataclass])
def test_refuses_classes_it_would_build_wrongly(cls: type) -> None:
    with pytest.raises(TypeError):
        slot_builder(cls)
