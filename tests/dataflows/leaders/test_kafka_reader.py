"""PartitionReader on a real broker: every message of a partition once and in order, across
batches and from a snapshot's offset; the end of a bounded read; consumer errors counted and
dropped, never passed on; `as_raw` copies that pickle."""

from __future__ import annotations

import contextlib
import pickle
import time
from collections.abc import Callable, Iterator

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
        producer.produce(
            topic,
            key=f"k{i}".encode(),
            value=f"v{i}".encode(),
            partition=1,
            headers=[("h", b"x")] if i == 0 else None,
        )
    assert producer.flush(30) == 0
    return topic


@contextlib.contextmanager
def open_reader(
    bootstrap: str,
    topic: str,
    partition: int,
    batch_size: int,
    *,
    offset: int = OFFSET_BEGINNING,
    tail: bool = False,
) -> Iterator[PartitionReader]:
    config = consumer_config([bootstrap], tail=tail, add_config={})
    reader = PartitionReader(config, topic, partition, offset, batch_size)
    try:
        yield reader
    finally:
        reader.close()


def errors_total() -> float:
    return sum(
        sample.value
        for metric in KAFKA_CONSUMER_ERRORS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )


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
    with open_reader(kafka_bootstrap, filled_topic, 1, batch_size) as reader:
        got = read_all(reader)
        assert [m.value() for m in got] == [f"v{i}".encode() for i in range(COUNT)]
        assert [m.offset() for m in got] == list(range(COUNT))
        assert reader.snapshot() == COUNT
        with pytest.raises(StopIteration):
            reader.next_batch()


def test_resumes_at_the_snapshot_offset(kafka_bootstrap: str, filled_topic: str) -> None:
    with open_reader(kafka_bootstrap, filled_topic, 1, 10) as first:
        taken: list[Message] = []
        while len(taken) < 95:
            taken.extend(first.next_batch())
        offset = first.snapshot()
        assert offset == len(taken)
    with open_reader(kafka_bootstrap, filled_topic, 1, 10, offset=offset) as second:
        rest = read_all(second)
    assert [m.offset() for m in [*taken, *rest]] == list(range(COUNT))


def test_an_empty_partition_ends_a_bounded_read(kafka_bootstrap: str, filled_topic: str) -> None:
    with open_reader(kafka_bootstrap, filled_topic, 0, 100) as reader:
        assert read_all(reader) == []
        assert reader.snapshot() == OFFSET_BEGINNING  # nothing read: start over next time


def test_a_consumer_error_is_counted_and_never_passed_on(
    kafka_bootstrap: str, filled_topic: str
) -> None:
    """Partition 9 of a two-partition topic: librdkafka answers with an error message."""
    before = errors_total()
    with open_reader(kafka_bootstrap, filled_topic, 9, 100, tail=True) as reader:
        deadline = time.monotonic() + 30
        while errors_total() == before and time.monotonic() < deadline:
            assert reader.next_batch() == []
    assert errors_total() > before


def test_as_raw_keeps_what_a_dead_letter_needs_and_pickles(
    kafka_bootstrap: str, filled_topic: str
) -> None:
    with open_reader(kafka_bootstrap, filled_topic, 1, 3) as reader:
        batch = read_all(reader)[:3]
    raw = as_raw(batch[0])
    copy = pickle.loads(pickle.dumps(raw))  # noqa: S301 - our own bytes
    assert (copy.key, copy.value, copy.topic, copy.partition, copy.offset) == (
        b"k0",
        b"v0",
        filled_topic,
        1,
        0,
    )
    assert copy.headers == [("h", b"x")]
    assert as_raw(raw) is raw
