"""PartitionReader on a real broker: every message of a partition once and in order, across
batches and from a snapshot's offset; the end of a bounded read; consumer errors counted and
dropped, never passed on; `as_raw` copies that pickle."""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable

import pytest
from confluent_kafka import OFFSET_BEGINNING, Message, Producer

from dataflows.leaders.kafka_reader import PartitionReader, as_raw, consumer_config
from stockstream.metrics import KAFKA_CONSUMER_ERRORS

pytestmark = pytest.mark.integration

COUNT = 250


@pytest.fixture
def filled_topic(kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]) -> str:
    topic = kafka_topic_factory("reader", partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(COUNT):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=1,
                         headers=[("h", b"x")] if i == 0 else None)
    assert producer.flush(30) == 0
    return topic


def read_all(reader: PartitionReader, deadline_s: float = 60.0) -> list[Message]:
    """Batches until StopIteration (a bounded read)."""
    got: list[Message] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            got.extend(reader.next_batch())
        except StopIteration:
            return got
    raise AssertionError(f"no end of partition within {deadline_s} s ({len(got)} read)")


@pytest.mark.parametrize("batch_size", [1, 7, COUNT, 10 * COUNT])
def test_bounded_read_gives_each_message_once_in_order(
    kafka_bootstrap: str, filled_topic: str, batch_size: int
) -> None:
    config = consumer_config([kafka_bootstrap], tail=False, add_config={})
    reader = PartitionReader(config, filled_topic, 1, OFFSET_BEGINNING, batch_size)
    try:
        got = read_all(reader)
        assert [m.value() for m in got] == [f"v{i}".encode() for i in range(COUNT)]
        assert [m.offset() for m in got] == list(range(COUNT))
        assert reader.snapshot() == COUNT
        with pytest.raises(StopIteration):
            reader.next_batch()
    finally:
        reader.close()


def test_resumes_at_the_snapshot_offset(kafka_bootstrap: str, filled_topic: str) -> None:
    config = consumer_config([kafka_bootstrap], tail=False, add_config={})
    first = PartitionReader(config, filled_topic, 1, OFFSET_BEGINNING, 10)
    try:
        taken: list[Message] = []
        while len(taken) < 95:
            taken.extend(first.next_batch())
        offset = first.snapshot()
        assert offset == len(taken)
    finally:
        first.close()
    second = PartitionReader(config, filled_topic, 1, offset, 10)
    try:
        rest = read_all(second)
    finally:
        second.close()
    assert [m.offset() for m in [*taken, *rest]] == list(range(COUNT))


def test_an_empty_partition_ends_a_bounded_read(kafka_bootstrap: str, filled_topic: str) -> None:
    config = consumer_config([kafka_bootstrap], tail=False, add_config={})
    reader = PartitionReader(config, filled_topic, 0, OFFSET_BEGINNING, 100)
    try:
        assert read_all(reader) == []
        assert reader.snapshot() == OFFSET_BEGINNING  # nothing read: start over next time
    finally:
        reader.close()


def test_a_consumer_error_is_counted_and_never_passed_on(
    kafka_bootstrap: str, filled_topic: str
) -> None:
    """Partition 9 of a two-partition topic: librdkafka answers with an error message."""
    config = consumer_config([kafka_bootstrap], tail=True, add_config={})
    reader = PartitionReader(config, filled_topic, 9, OFFSET_BEGINNING, 100)
    before = sum(s.value for m in KAFKA_CONSUMER_ERRORS.collect() for s in m.samples
                 if s.name.endswith("_total"))
    try:
        deadline = time.monotonic() + 30
        after = before
        while after == before and time.monotonic() < deadline:
            assert reader.next_batch() == []
            after = sum(s.value for m in KAFKA_CONSUMER_ERRORS.collect() for s in m.samples
                        if s.name.endswith("_total"))
        assert after > before
    finally:
        reader.close()


def test_as_raw_keeps_what_a_dead_letter_needs_and_pickles(
    kafka_bootstrap: str, filled_topic: str
) -> None:
    config = consumer_config([kafka_bootstrap], tail=False, add_config={})
    reader = PartitionReader(config, filled_topic, 1, OFFSET_BEGINNING, 3)
    try:
        batch: list[Message] = []
        while not batch:
            batch = reader.next_batch()
    finally:
        reader.close()
    raw = as_raw(batch[0])
    copy = pickle.loads(pickle.dumps(raw))  # noqa: S301 - our own bytes
    assert (copy.key, copy.value, copy.topic, copy.partition, copy.offset) == (
        b"k0", b"v0", filled_topic, 1, 0)
    assert copy.headers == [("h", b"x")]
    assert as_raw(raw) is raw
