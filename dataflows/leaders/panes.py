"""Per-symbol 10-second sub-aggregates (panes) and the window figures derived from them.

Each tick updates exactly one pane, so the cost per tick is O(1) whatever the number of
overlapping windows; a window's figures are folded from its panes when it closes, for every
symbol of the partition at once (`dataflows.leaders.fold`).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass

from dataflows.leaders.specs import PANE_MS
from stockstream.slots import fast_getstate

FOUR_LN2 = 4.0 * math.log(2.0)


# One pane is RECORD consecutive doubles of a symbol's array; field offsets:
INDEX, COUNT, PRICE_SUM, NOTIONAL_SUM, SIZE_SUM, HIGH, LOW = 0, 1, 2, 3, 4, 5, 6
FIRST_TS, FIRST_PRICE, LAST_TS, LAST_PRICE = 7, 8, 9, 10
RECORD = 11
_ZERO_RECORD = array("d", [0.0] * RECORD)
_EMPTY = array("d")  # shared by every symbol whose panes all fit in the head; never written
DEFAULT_CAPACITY_PANES = 91
"""Records a symbol's buffer holds before it grows past its hint: a 15-minute horizon (90
panes) and the pane after it, the most a symbol holds besides its head while the engine
closes each window as soon as the watermark passes its end (the engine passes its own horizon
+ 1), so a dense symbol's buffer slides rather than grows."""
BUSY_PANE_TICKS, QUIET_PANE_TICKS = 16, 4
"""A symbol's head is a list from a pane of `BUSY_PANE_TICKS` ticks or more until a pane of
fewer than `QUIET_PANE_TICKS` (apart, so that a symbol near one bound does not switch at
every pane); otherwise an array (see `SymbolPanes`). A list updates in about 110 ns a tick,
an array in about 300 (each store parses its value), but a list's boxed floats cost
resident memory."""


class SymbolPanes:
    """One symbol's panes, oldest first. Pane `i` aggregates `[i * 10 s, (i + 1) * 10 s)`:
    count, sums of price, price x size and size, high, low, first and last (time, price).

    The newest pane, where nearly every tick lands, is the head: RECORD numbers, in one of
    two shapes chosen at each new pane from the last one's tick count (`BUSY_PANE_TICKS`). A
    quiet symbol keeps one array of doubles for good, its record copied out and overwritten
    in place: a list's boxed floats, allocated among each batch's transient ticks, pin
    half-empty allocator arenas (0.8 KB of resident memory a symbol at 10,000 symbols,
    bench.memory). A busy symbol's head is a list, three times faster to update, its memory
    small beside its ticks' CPU. Older panes are packed into one preallocated array of
    doubles (88 bytes a pane), records `lo` to `hi` of it in use. Trimming moves `lo`; a full
    buffer moves its records to the front, or grows (1, 4, 16, then `capacity_hint` panes at
    once, see `_grown_capacity`), so a symbol allocates a handful of times instead of growing
    pane by pane. Millisecond times and counts are exact in a double up to 2**53."""

    __slots__ = ("capacity_hint", "data", "head", "hi", "lo")

    def __init__(self, capacity_hint: int = DEFAULT_CAPACITY_PANES) -> None:
        self.data = _EMPTY  # shared until the first pane leaves the head
        self.head: array[float] | list[float] | None = None
        self.lo = 0  # first record in use (in records, not doubles)
        self.hi = 0  # one past the last record in use
        self.capacity_hint = capacity_hint

    def __bool__(self) -> bool:
        return self.head is not None

    def __len__(self) -> int:
        """The number of panes."""
        return self.hi - self.lo + (self.head is not None)

    @property
    def oldest_index(self) -> int:
        assert self.head is not None, "no panes"
        return int(self.data[self.lo * RECORD] if self.hi > self.lo else self.head[INDEX])

    def add(self, price: float, size: float | None, ts_ms: int) -> None:
        """Fold one tick into its pane. Equal times keep arrival order: first stays, last moves."""
        index = ts_ms // PANE_MS
        head = self.head
        if head is None:  # a list until a pane shows the symbol quiet
            self.head = _new_record(index, price, size, ts_ms)
        elif index > head[0]:  # a new pane: the head's record moves to `data`
            self._push(head)
            record = _new_record(index, price, size, ts_ms)
            if head[1] >= (QUIET_PANE_TICKS if type(head) is list else BUSY_PANE_TICKS):
                self.head = record
            elif type(head) is array:
                head[:] = array("d", record)  # overwritten in place: no new allocation
            else:
                self.head = array("d", record)
        elif index == head[0]:  # the hot path, inlined with literal offsets (see RECORD)
            head[1] += 1
            head[2] += price
            if size is not None:
                head[3] += price * size
                head[4] += size
            if price > head[5]:
                head[5] = price
            elif price < head[6]:
                head[6] = price
            if ts_ms >= head[9]:
                head[9] = ts_ms
                head[10] = price
            elif ts_ms < head[7]:
                head[7] = ts_ms
                head[8] = price
        else:
            self._add_older(index, price, size, ts_ms)

    def _push(self, record: array[float] | list[float]) -> None:
        """Append a record after the last one in use."""
        if self.hi * RECORD == len(self.data):
            self._make_room()
        at = self.hi * RECORD
        self.data[at : at + RECORD] = record if type(record) is array else array("d", record)
        self.hi += 1

    def _make_room(self) -> None:
        """At least one free record after `hi`: move the records to the front, or grow."""
        lo, hi, data = self.lo, self.hi, self.data
        used = hi - lo
        capacity = len(data) // RECORD
        hint = self.capacity_hint
        if lo and (used <= capacity * 3 // 4 or capacity >= hint):  # slide to the front
            # (a memmove; a full-size buffer slides every few panes, as the front is trimmed)
            data[: used * RECORD] = data[lo * RECORD : hi * RECORD]
        else:
            grown = max(used + 1, _grown_capacity(capacity, hint))
            fresh = _ZERO_RECORD * grown  # allocated once, at its exact size
            fresh[: used * RECORD] = data[lo * RECORD : hi * RECORD]
            self.data = fresh
        self.lo, self.hi = 0, used

    def _stored_through(self, index: int) -> int:
        """One past the newest stored record whose pane is `index` or older (`lo` if none):
        a walk back from the newest, as late ticks and lookups are for recent panes."""
        data, lo, pos = self.data, self.lo, self.hi
        while pos > lo and data[(pos - 1) * RECORD] > index:
            pos -= 1
        return pos

    def record_of(self, index: int) -> Sequence[float] | None:
        """Pane `index`'s record (the head itself, or a copy of a stored one); None when the
        symbol has no tick in that pane."""
        head = self.head
        if head is not None and head[INDEX] == index:
            return head
        pos = self._stored_through(index)
        if pos > self.lo and self.data[(pos - 1) * RECORD] == index:
            return self.data[(pos - 1) * RECORD : pos * RECORD]
        return None

    def _add_older(self, index: int, price: float, size: float | None, ts_ms: int) -> None:
        data = self.data
        lo = self.lo
        pos = self._stored_through(index)
        if pos > lo and data[(pos - 1) * RECORD] == index:
            _fold_tick(data, (pos - 1) * RECORD, price, size, ts_ms)
            return
        record = array("d", _new_record(index, price, size, ts_ms))
        if pos == lo and lo > 0:  # before every stored pane, with room at the front
            self.lo = lo - 1
            data[(lo - 1) * RECORD : lo * RECORD] = record
            return
        if self.hi * RECORD == len(data):
            before = self.lo
            self._make_room()
            pos -= before - self.lo
            data = self.data
        at, end = pos * RECORD, self.hi * RECORD
        data[at + RECORD : end + RECORD] = data[at:end]
        data[at : at + RECORD] = record
        self.hi += 1

    def trim(self, keep_from_index: int) -> None:
        """Drop the panes before `keep_from_index`."""
        if self.head is not None and self.head[INDEX] < keep_from_index:
            self.head = None
            self.data, self.lo, self.hi = _EMPTY, 0, 0
            return
        data, lo, hi = self.data, self.lo, self.hi
        while lo < hi and data[lo * RECORD] < keep_from_index:
            lo += 1
        self.lo = lo
        if lo == hi:
            self.lo = self.hi = 0

    def flat(self) -> list[float]:
        """Every pane's record, oldest first, in one flat list."""
        values = self.data[self.lo * RECORD : self.hi * RECORD].tolist()
        if self.head is not None:
            values.extend(self.head)
        return values

    def __getstate__(self) -> tuple[array[float], array[float] | list[float] | None, int]:
        """Only the records in use (snapshots stay small)."""
        return self.data[self.lo * RECORD : self.hi * RECORD], self.head, self.capacity_hint

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            slots = state[1]  # a snapshot of the earlier layout: no free room, no hint
            data, head, hint = slots["data"], slots["head"], DEFAULT_CAPACITY_PANES
        else:
            data, head, hint = state  # type: ignore[misc]
        self.data, self.head, self.capacity_hint = data, head, hint
        self.lo, self.hi = 0, len(data) // RECORD


def _grown_capacity(capacity: int, hint: int) -> int:
    """The next buffer size, in panes: x4 while that stays under half the hint (1, 4, 16),
    then the hint itself (a dense symbol allocates its full buffer once, and never a
    64-pane one that it would soon free: such holes are what made RSS exceed the data),
    then an eighth of the hint at a time (only when late panes exceed the hint)."""
    if capacity >= hint:
        return capacity + max(1, hint // 8)
    return capacity * 4 if capacity * 4 < hint // 2 else hint


def _fold_tick(
    record: MutableSequence[float], base: int, price: float, size: float | None, ts_ms: int
) -> None:
    record[base + COUNT] += 1
    record[base + PRICE_SUM] += price
    if size is not None:
        record[base + NOTIONAL_SUM] += price * size
        record[base + SIZE_SUM] += size
    if price > record[base + HIGH]:
        record[base + HIGH] = price
    if price < record[base + LOW]:
        record[base + LOW] = price
    if ts_ms < record[base + FIRST_TS]:
        record[base + FIRST_TS] = ts_ms
        record[base + FIRST_PRICE] = price
    if ts_ms >= record[base + LAST_TS]:
        record[base + LAST_TS] = ts_ms
        record[base + LAST_PRICE] = price


def _new_record(index: int, price: float, size: float | None, ts_ms: int) -> list[float]:
    sized = 0.0 if size is None else size
    return [index, 1, price, price * sized, sized, price, price, ts_ms, price, ts_ms, price]


@fast_getstate
@dataclass(frozen=True, slots=True)
class Figures:
    """One symbol's figures over one window."""

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

    def score(self, name: str) -> float:
        """The figure named `name` ("mean" or "max")."""
        return self.mean if name == "mean" else self.max
