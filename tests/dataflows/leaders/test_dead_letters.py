"""Dead letters are logged once per reason and batch, with the reason as its own field."""

from __future__ import annotations

import logging

import pytest

from dataflows.leaders.dead_letters import log_dead_letters
from dataflows.leaders.inputs import DeadLetter
from stockstream.ticks import Reason


def letter(reason: Reason, offset: int) -> DeadLetter:
    return DeadLetter(reason, f"{reason.value}: x", b"K", b"v", "ticks", 1, offset)


def test_one_warning_per_reason_with_count_and_first_position(
    caplog: pytest.LogCaptureFixture,
) -> None:
    batch = [letter(Reason.INVALID_JSON, 5), letter(Reason.LATE, 6), letter(Reason.INVALID_JSON, 7)]
    with caplog.at_level(logging.WARNING, "dataflows.leaders.dead_letters"):
        log_dead_letters(batch)
    extras = [vars(r) for r in caplog.records]  # the `extra` fields are record attributes
    got = {
        x["reason"]: (x["levelname"], x["msg"], x["count"], x["source_offset"], x["reason_detail"])
        for x in extras
    }
    assert got == {
        "invalid_json": ("WARNING", "ticks dead-lettered", 2, 5, "invalid_json: x"),
        "late": ("WARNING", "ticks dead-lettered", 1, 6, "late: x"),
    }
    assert all(x["source_topic"] == "ticks" and x["source_partition"] == 1 for x in extras)
