"""stockstream.log_throttle: the first line of a kind at once, then one per interval with the
number held back (a fake clock; the real use is the Kafka clients' lines during an outage)."""

from __future__ import annotations

import logging

import pytest

from stockstream.log_throttle import LogThrottle, ThrottleFilter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_first_line_of_each_kind_passes_then_one_per_interval(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("test.throttle")
    throttle = LogThrottle(log, interval_s=30.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        passed = [throttle.log(logging.WARNING, "down", key="A") for _ in range(5)]
        assert throttle.log(logging.WARNING, "other", key="B")  # another kind is not held
        clock.now += 29.9
        assert not throttle.log(logging.WARNING, "down", key="A")
        clock.now += 0.1
        assert throttle.log(logging.WARNING, "down", key="A", extra={"error": "x"})
        clock.now += 30.0
        assert throttle.log(logging.WARNING, "down", key="A")
    assert passed == [True, False, False, False, False]
    records = [r for r in caplog.records if r.getMessage() == "down"]
    assert len(records) == 3
    assert not hasattr(records[0], "suppressed")
    held = records[1].__dict__  # 4 held back at once, 1 at 29.9 s
    assert (held["suppressed"], held["interval_s"], held["error"]) == (5, 30.0, "x")
    assert not hasattr(records[2], "suppressed")  # nothing held back in between


@pytest.mark.parametrize(
    ("first", "second", "same_kind"),
    [
        (
            "Connect to ipv4#10.244.0.21:9092 failed (after 3ms)",
            "Connect to ipv4#10.244.0.22:9092 failed (after 0ms)",
            True,
        ),  # digits vary
        ("Connect to ipv4#10.244.0.21:9092 failed", "Disconnected from 10.244.0.21:9092", False),
    ],
)
def test_filter_keys_lines_by_their_text_without_digits(
    clock: Clock, first: str, second: str, same_kind: bool
) -> None:
    gate = ThrottleFilter(interval_s=30.0, clock=clock)
    record = logging.makeLogRecord
    assert gate.filter(record({"msg": first}))
    assert gate.filter(record({"msg": second})) is not same_kind
    clock.now += 30.0
    later = record({"msg": first})
    assert gate.filter(later)
    assert getattr(later, "suppressed", 0) == (1 if same_kind else 0)
