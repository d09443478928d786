"""Reading a topic back in tests: one helper for every test that checks what a broker holds."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Message


def read_topic(
    bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0, settle_s: float = 1.0
) -> list[Message]:
    """Every message of `topic` from the beginning, with a fresh consumer group: stops once
    `expected` have arrived and nothing more came for `settle_s`, or at the timeout."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    settled_at: float | None = None
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=0.2)
            for message in batch:
                assert message.error() is None, message.error()
            messages.extend(batch)
            if batch:
                settled_at = None
            if len(messages) >= expected:
                settled_at = settled_at or time.monotonic() + settle_s
                if time.monotonic() >= settled_at:
                    break
    finally:
        consumer.close()
    return messages
