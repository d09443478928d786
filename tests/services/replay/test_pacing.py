"""Pacing schedule with an injected clock and sleep: what is slept, never wall time."""

from __future__ import annotations

from itertools import islice, pairwise

import pytest

from services.replay.pacing import Pacer, due_in, loop_period_ms, looped, shift
from stockstream.ticks import Tick


class FakeClock:
    """A monotonic clock that only moves when slept on or advanced by the test."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(round(seconds, 9))
        self.now += seconds


@pytest.mark.parametrize(
    ("speed", "ts_ms", "work_s", "expected_sleeps"),
    [
        pytest.param(1.0, [0, 1000, 1500, 4000], 0.0, [1.0, 0.5, 2.5], id="real-time"),
        pytest.param(
            60.0, [0, 60_000, 120_000, 123_000], 0.0, [1.0, 1.0, 0.05], id="minute-per-second"
        ),
        pytest.param(0.5, [0, 1000], 0.0, [2.0], id="slow-motion"),
        pytest.param(1.0, [0, 0, 0, 1000], 0.0, [1.0], id="same-timestamp-no-sleep"),
        pytest.param(1.0, [5000, 3000, 6000], 0.0, [1.0], id="out-of-order-never-negative"),
        pytest.param(1.0, [0, 1000, 2000, 3000], 0.25, [0.75, 0.75, 0.75], id="work-is-absorbed"),
        pytest.param(1.0, [0, 100, 200, 2000], 0.5, [0.5], id="late-ticks-catch-up-no-drift"),
        pytest.param(0.0, [0, 1000, 100_000], 0.0, [], id="as-fast-as-possible"),
    ],
)
def test_pacer_schedule(
    speed: float, ts_ms: list[int], work_s: float, expected_sleeps: list[float]
) -> None:
    clock = FakeClock()
    pacer = Pacer(speed, clock=clock, sleep=clock.sleep)
    for ts in ts_ms:
        pacer.wait(ts)
        clock.now += work_s  # time spent publishing the tick
    assert clock.slept == pytest.approx(expected_sleeps)


def test_speed_zero_never_reads_the_clock() -> None:
    def no_clock() -> float:
        raise AssertionError("clock read")

    pacer = Pacer(0, clock=no_clock, sleep=lambda s: pytest.fail("slept"))
    assert [pacer.wait(ts) for ts in (0, 10_000)] == [0.0, 0.0]


def test_sleep_that_returns_early_resumes_from_the_clock() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, sleep=lambda s: None)  # e.g. Event.wait woken up
    pacer.wait(0)
    assert pacer.wait(2000) == 2.0
    clock.now += 0.5
    assert pacer.wait(2000) == pytest.approx(1.5)


def test_negative_speed_is_refused() -> None:
    with pytest.raises(ValueError):
        Pacer(-1)


@pytest.mark.parametrize(
    ("anchor", "anchor_ts", "ts", "speed", "now", "expected"),
    [
        (10.0, 0, 1000, 1.0, 10.0, 1.0),
        (10.0, 0, 1000, 2.0, 10.0, 0.5),
        (10.0, 0, 1000, 1.0, 12.0, 0.0),
        (10.0, 1000, 0, 1.0, 10.0, 0.0),
        (10.0, 0, 1000, 0.0, 10.0, 0.0),
    ],
)
def test_due_in(
    anchor: float, anchor_ts: int, ts: int, speed: float, now: float, expected: float
) -> None:
    assert due_in(anchor, anchor_ts, ts, speed, now) == pytest.approx(expected)


def ticks(*ts_ms: int) -> list[Tick]:
    return [Tick(f"S{i}", 1.0 + i, ts, source="test") for i, ts in enumerate(ts_ms)]


def test_no_loop_is_one_pass() -> None:
    assert list(looped(lambda: ticks(0, 10, 20), loop=False)) == ticks(0, 10, 20)


def test_loop_shifts_each_pass_by_the_span() -> None:
    out = list(islice(looped(lambda: ticks(100, 150, 400), loop=True), 9))
    period = loop_period_ms(100, 400)
    assert period == 301
    assert [t.ts_ms for t in out] == [
        100, 150, 400,
        401, 451, 701,
        702, 752, 1002,
    ]  # fmt: skip
    assert all(a.ts_ms < b.ts_ms for a, b in pairwise(out))
    assert [t.symbol for t in out] == ["S0", "S1", "S2"] * 3
    assert out[3] == shift(ticks(100)[0], period)


def test_loop_of_unsorted_file_still_increases_between_passes() -> None:
    out = list(islice(looped(lambda: ticks(300, 100, 200), loop=True), 6))
    assert min(t.ts_ms for t in out[3:]) > max(t.ts_ms for t in out[:3])


def test_loop_over_nothing_ends() -> None:
    assert list(looped(lambda: [], loop=True)) == []


def test_loop_rereads_the_source_each_pass() -> None:
    calls: list[int] = []

    def read() -> list[Tick]:
        calls.append(1)
        return ticks(0, 5)

    assert len(list(islice(looped(read, loop=True), 6))) == 6
    assert len(calls) == 3


def test_looped_pacing_keeps_event_time_spacing_across_passes() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    for tick in islice(looped(lambda: ticks(0, 1000), loop=True), 4):
        pacer.wait(tick.ts_ms)
    assert clock.slept == pytest.approx([1.0, 0.001, 1.0])
