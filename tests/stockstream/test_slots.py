"""`slot_builder(cls)` builds the very object `cls(...)` builds, and refuses classes it would
build wrongly; `fast_getstate(cls)` pickles the same state as the dataclass itself, and the
snapshots of both versions load."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflows.leaders.engine import WindowPart
from dataflows.leaders.panes import Figures
from stockstream.slots import fast_getstate, slot_builder
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


@given(
    values=st.tuples(
        st.text(max_size=8),
        st.integers(0, 10**6),
        FLOATS,
        FLOATS,
        FLOATS,
        FLOATS,
        FLOATS,
        st.none() | FLOATS,
        FLOATS,
        FLOATS,
    )
)
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


# A (WindowPart holding one Figures, Tick) pickled by the version before fast_getstate (the
# dataclass's own __getstate__, a list of field values), as a recovery snapshot holds them.
BEFORE_FAST_GETSTATE = (
    b"\x80\x05\x95%\x01\x00\x00\x00\x00\x00\x00\x8c\x18dataflows.leaders.engine\x94\x8c\nWindowPart"
    b"\x94\x93\x94)\x81\x94]\x94(\x8c\x021m\x94\x8a\x06 \xc8\x9ds}\x01\x8c\x010\x94\x8c\x17"
    b"dataflows.leaders.panes\x94\x8c\x07Figures\x94\x93\x94)\x81\x94]\x94(\x8c\x03AIG\x94K\x03G@?\x80\x00"
    b"\x00\x00\x00\x00G@?\x00\x00\x00\x00\x00\x00G@@\x00\x00\x00\x00\x00\x00G@?\x19\x99\x99\x99"
    b"\x99\x9aG@?\xe6fffffNG@\x04\x00\x00\x00\x00\x00\x00G?\xc0\x00\x00\x00\x00\x00\x00eb\x85\x94"
    b"h\x0cG@?\x80\x00\x00\x00\x00\x00\x86\x94\x85\x94GA\xd8i\xb4\x16`\x00\x00eb\x8c\x11stockstream"
    b".ticks\x94\x8c\x04Tick\x94\x93\x94)\x81\x94]\x94(\x8c\x03BAC\x94G@.\x80\x00\x00\x00\x00\x00"
    b"\x8a\x06\x901\x1c\x93A\x01G@Y\x00\x00\x00\x00\x00\x00\x8c\x06replay\x94Neb\x86\x94."
)
FIGURES = Figures("AIG", 3, 31.5, 31.0, 32.0, 31.1, 31.9, None, 2.5, 0.125)
PART = WindowPart("1m", 1638322260000, "0", (FIGURES,), (("AIG", 31.5),), 1638322265.5)
TICK = Tick("BAC", 15.25, 1381152600464, 100.0, "replay", None)


@pytest.mark.parametrize("obj", [FIGURES, PART, TICK], ids=lambda o: type(o).__name__)
def test_fast_state_is_the_dataclass_state(obj: Figures | WindowPart | Tick) -> None:
    state = obj.__getstate__()
    assert isinstance(state, tuple), "not fast_getstate's (the dataclass's own gives a list)"
    assert list(state) == [getattr(obj, f.name) for f in fields(obj)]
    assert pickle.loads(pickle.dumps(obj, protocol=5)) == obj  # noqa: S301 - our own bytes


def test_snapshots_of_the_version_before_load() -> None:
    part, tick = pickle.loads(BEFORE_FAST_GETSTATE)  # noqa: S301 - our own bytes
    assert (part, tick) == (PART, TICK)
    assert part.rows[0] == FIGURES


def test_fast_getstate_refuses_what_it_cannot_pickle() -> None:
    @dataclass(frozen=True)
    class Plain:
        a: int
        b: int

    @dataclass(frozen=True, slots=True)
    class One:
        a: int

    with pytest.raises(TypeError, match="not a slotted dataclass"):
        fast_getstate(Plain)
    with pytest.raises(TypeError, match="fewer than two fields"):
        fast_getstate(One)
