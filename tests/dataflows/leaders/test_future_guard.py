"""The far-future guard's rule, tick by tick: what passes, what is held, what a stream of later
ticks confirms or refutes, and that the held ticks are never lost."""

from __future__ import annotations

import pickle

import pytest

from dataflows.leaders.future_guard import FutureGuard, GuardConfig, Released
from dataflows.leaders.inputs import DeadLetter, RawMessage
from dataflows.leaders.kafka_reader import as_raw
from stockstream.ticks import Reason, Tick

NOW_MS = 1_795_000_000_000  # the wall clock of these cases (2026-11-18)
DAY_MS = 86_400_000
H_MS = 3_600_000
REPLAY_MS = 1_638_322_200_000  # 2021-12-01T01:30:00Z: a replay, years behind the clock
CONFIG = GuardConfig(
    max_ahead_of_clock_ms=300_000,
    max_jump_ms=H_MS,
    live_lag_ms=4 * DAY_MS,
    confirm_ticks=3,
    max_held=5,
)


def message(offset: int, tick: Tick) -> RawMessage:
    return RawMessage(
        tick.symbol.encode(), f"{tick.ts_ms}".encode(), topic="ticks", offset=offset, partition=0
    )


def run(times_ms: list[int], end_of_input: bool = False) -> tuple[list[int], list[str], int]:
    """Feed ticks at these times (symbol cycling) through one guard: (offsets let through in
    order, one 'offset:reason' per dead letter, ticks still held)."""
    guard = FutureGuard("0", CONFIG)
    passed: Released = []
    rejected: list[DeadLetter] = []
    for offset, ts_ms in enumerate(times_ms):
        tick = Tick("ABC"[offset % 3], 10.0, ts_ms)
        guard.admit(message(offset, tick), tick, NOW_MS, passed, rejected)
    if end_of_input:
        guard.end_of_input(rejected)
    outcome = [as_raw(msg).offset or 0 for msg, _ in passed]
    letters = [f"{letter.offset}:{letter.reason}" for letter in rejected]
    every = sorted(
        [
            *outcome,
            *(letter.offset for letter in rejected),
            *(msg.offset or 0 for msg, _ in guard.held),
        ]
    )
    assert every == list(range(len(times_ms))), "a tick was lost or doubled"
    return outcome, letters, len(guard.held)


R = REPLAY_MS
CASES = [
    # (case, event times, end of input, passed offsets, dead letters, held at the end)
    ("in order", [R, R + 1000, R + 2000], False, [0, 1, 2], [], 0),
    (
        "ahead of the wall clock: rejected at once",
        [R, NOW_MS + 301_000, R + 1000],
        False,
        [0, 2],
        ["1:future"],
        0,
    ),
    ("first tick ahead of the clock", [NOW_MS + DAY_MS], False, [], ["0:future"], 0),
    ("within the jump bound passes", [R, R + H_MS, R + H_MS + 1], False, [0, 1, 2], [], 0),
    (
        "one far tick mid-session is refuted by the next ones",
        [R, R + 365 * DAY_MS, R + 1000, R + 2000, R + 3000, R + 4000],
        False,
        [0, 2, 3, 4, 5],
        ["1:future"],
        0,
    ),
    (
        "refuted only after confirm_ticks ticks at the old time",
        [R, R + 365 * DAY_MS, R + 1000, R + 2000],
        False,
        [0, 2, 3],
        [],
        1,
    ),
    (
        "overnight gap confirmed by three ticks, released in order",
        [R, R + 18 * H_MS, R + 18 * H_MS + 3000, R + 18 * H_MS + 6000, R + 18 * H_MS + 9000],
        False,
        [0, 1, 2, 3, 4],
        [],
        0,
    ),
    (
        "gap ticks spread out but chained within the bound",
        [R, R + 5 * H_MS, R + 5 * H_MS + 50 * 60_000, R + 5 * H_MS + 100 * 60_000],
        False,
        [0, 1, 2, 3],
        [],
        0,
    ),
    (
        "two far ticks apart do not confirm each other",
        [R, R + 365 * DAY_MS, R + 2 * 365 * DAY_MS, R + 3 * 365 * DAY_MS],
        False,
        [0],
        [],
        3,
    ),
    (
        "a bad far tick, then a real next day: the day is confirmed, the bad tick stays held",
        [R, R + 900 * DAY_MS, R + DAY_MS, R + DAY_MS + 1, R + DAY_MS + 2],
        False,
        [0, 2, 3, 4],
        [],
        1,
    ),
    (
        "held ticks are rejected at the end of a bounded input",
        [R, R + 2 * DAY_MS, R + 2 * DAY_MS + 1],
        True,
        [0],
        ["1:future", "2:future"],
        0,
    ),
    (
        "the hold buffer is bounded: the oldest is rejected",
        [R, *(R + k * 30 * DAY_MS for k in range(1, 7))],
        False,
        [0],
        ["1:future"],
        5,
    ),
    (
        "a live partition: a next-day gap passes at once",
        [NOW_MS - 17 * H_MS, NOW_MS - 1000],
        False,
        [0, 1],
        [],
        0,
    ),
    (
        "a live partition: still not ahead of the clock",
        [NOW_MS - 1000, NOW_MS + 400_000],
        False,
        [0],
        ["1:future"],
        0,
    ),
]


@pytest.mark.parametrize(
    ("times_ms", "end", "passed", "letters", "held"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_rule(
    times_ms: list[int], end: bool, passed: list[int], letters: list[str], held: int
) -> None:
    assert run(times_ms, end) == (passed, letters, held)


def test_dead_letter_names_the_reason_and_times() -> None:
    guard = FutureGuard("2", CONFIG)
    rejected: list[DeadLetter] = []
    passed: Released = []
    tick = Tick("ABC", 10.0, NOW_MS + DAY_MS)
    guard.admit(message(7, tick), tick, NOW_MS, passed, rejected)
    [letter] = rejected
    assert letter.reason == Reason.FUTURE and letter.offset == 7
    assert letter.value == message(7, tick).value
    assert "too far ahead" in letter.reason_text and "partition 2" in letter.reason_text


def test_held_ticks_survive_a_snapshot() -> None:
    guard = FutureGuard("0", CONFIG)
    passed: Released = []
    rejected: list[DeadLetter] = []
    ticks = [Tick("A", 1.0, R), Tick("A", 2.0, R + DAY_MS), Tick("B", 3.0, R + DAY_MS + 1)]
    for offset, tick in enumerate(ticks[:2]):
        guard.admit(message(offset, tick), tick, NOW_MS, passed, rejected)
    restored = pickle.loads(pickle.dumps(guard))  # noqa: S301 - our own bytes
    assert [tick for _, tick in restored.held] == [ticks[1]]
    restored.config = GuardConfig(confirm_ticks=2, max_jump_ms=H_MS)
    restored.admit(message(2, ticks[2]), ticks[2], NOW_MS, passed, rejected)
    assert [tick for _, tick in passed] == ticks and not rejected
