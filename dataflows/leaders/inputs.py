"""Kafka messages to valid ticks or dead letters (original bytes, reason, where read)."""

from __future__ import annotations

from collections.abc import Generator, Iterable
from dataclasses import dataclass

from confluent_kafka import Message

from dataflows.leaders.kafka_reader import RawMessage, Received, as_raw
from stockstream.metrics import TICKS_DECODED
from stockstream.ticks import Reason, Rejection, Tick, decode

__all__ = ["DeadLetter", "RawMessage", "Received", "dead_letter", "decode_batch", "letter_for"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected message, its reason and where it was read from."""

    reason: Reason
    reason_text: str
    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int


def dead_letter(msg: Received, rejection: Rejection) -> DeadLetter:
    """A message's dead letter: its original bytes, the reason and where it was read."""
    raw = as_raw(msg)
    return DeadLetter(
        rejection.reason,
        rejection.reason_text,
        raw.key,
        raw.value,
        raw.topic or "",
        raw.partition or 0,
        raw.offset or 0,
    )


def letter_for(msg: Received, reason: Reason, detail: str) -> DeadLetter:
    """The dead letter of a message that decoded to a valid tick but is refused later (late,
    too far ahead of the clock)."""
    raw = as_raw(msg)
    return dead_letter(raw, Rejection(reason, detail, raw.key, raw.value))


def decode_batch(
    messages: Iterable[Received],
) -> Generator[tuple[Received, Tick | Rejection], None, None]:
    """Each message with its decoded tick or rejection (consumer errors never get here:
    `PartitionReader` counts and drops them). Counts the valid ticks it yielded once, at its
    end or when closed."""
    valid = 0
    try:
        for msg in messages:
            if isinstance(msg, Message):  # as consumed
                decoded = decode(msg.key(), msg.value())
            else:  # a kept copy: the rest of a cut batch, resumed from a snapshot
                decoded = decode(msg.key, msg.value)
            valid += isinstance(decoded, Tick)
            yield msg, decoded
    finally:  # also when the caller stops early (a batch cut at a window end)
        TICKS_DECODED.inc(valid)
