"""Where a restarted replay resumes: after the last tick each partition of the topic holds.

Every replayed message carries its position in the replay, header `replay_seq` (0, 1, 2 ...
over the ticks of `replay_ticks(settings)`, loops included), and goes to the partition
`partition_for(key, n)`: CRC-32 of the key modulo the partition count, which is what
librdkafka's default partitioner (`consistent_random`) picks for a keyed message, so a replay
lands where any other project producer would put the same symbol.

The producer is idempotent, so each partition holds a prefix of what was sent to it, in
order, without duplicates. A replay started with `REPLAY_RESUME=true` reads the last
`replay_seq` of each partition and skips every tick whose sequence is not above its
partition's: after a SIGKILL nothing is sent twice and nothing is skipped. The one window
left: a produce request the killed process had already sent and the broker writes after the
new process read the partition ends (milliseconds; a transactional producer would close it).
"""

from __future__ import annotations

import logging
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from stockstream.ticks import Tick

log = logging.getLogger(__name__)

SEQ_HEADER = "replay_seq"
TAIL_MESSAGES = 1000  # how far back from a partition's end a replay_seq header is looked for


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of a keyed message: librdkafka's `consistent_random` (CRC-32 % n)."""
    return zlib.crc32(key) % partitions


@dataclass(frozen=True)
class ResumePoint:
    """The last replay sequence each partition holds (-1: none of this replay's)."""

    last_seq: tuple[int, ...]

    @property
    def partitions(self) -> int:
        return len(self.last_seq)

    def sent(self, seq: int, partition: int) -> bool:
        """Whether the tick at `seq` bound for `partition` is already in the topic."""
        return seq <= self.last_seq[partition]


def partition_count(bootstrap: str, topic: str, extra: Mapping[str, object]) -> int:
    """The topic's partition count; raises when the topic does not exist."""
    consumer = _consumer(bootstrap, extra)
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise RuntimeError(f"topic {topic!r} not found: create it before a resumable replay")
        return len(metadata.partitions)
    finally:
        consumer.close()


def read_resume_point(bootstrap: str, topic: str, extra: Mapping[str, object]) -> ResumePoint:
    """Each partition's highest `replay_seq` among its last `TAIL_MESSAGES` messages."""
    partitions = partition_count(bootstrap, topic, extra)
    consumer = _consumer(bootstrap, extra)
    last = [-1] * partitions
    try:
        for index in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, index), timeout=30)
            if high <= low:
                continue
            start = max(low, high - TAIL_MESSAGES)
            consumer.assign([TopicPartition(topic, index, start)])
            for seq in _seqs(consumer, high):
                last[index] = max(last[index], seq)
            consumer.unassign()
    finally:
        consumer.close()
    return ResumePoint(tuple(last))


def _seqs(consumer: Consumer, high: int) -> Iterator[int]:
    """The `replay_seq` headers of the assigned partition's messages up to offset `high`."""
    while True:
        batch = consumer.consume(num_messages=500, timeout=10)
        if not batch:
            raise RuntimeError("could not read the topic's last messages to resume from")
        for message in batch:
            if message.error() is not None:
                continue
            headers = message.headers() or []
            assert isinstance(headers, list), headers  # a consumed message's: [(name, value)]
            for name, value in headers:
                if name == SEQ_HEADER and isinstance(value, bytes):
                    yield int(value)
            offset = message.offset()
            if offset is not None and offset >= high - 1:
                return


def unsent(
    ticks: Iterable[Tick], point: ResumePoint, key_of: dict[str, bytes]
) -> Iterator[tuple[int, Tick]]:
    """(seq, tick) of the ticks the topic does not hold yet; the skipped ones are counted in
    `stockstream_replay_ticks_skipped_total`."""
    from stockstream.metrics import REPLAY_TICKS_SKIPPED

    skipped, logged = 0, False
    for seq, tick in enumerate(ticks):
        key = key_of.get(tick.symbol)
        if key is None:
            key = key_of[tick.symbol] = tick.symbol.encode()
        if point.sent(seq, partition_for(key, point.partitions)):
            skipped += 1
            REPLAY_TICKS_SKIPPED.inc()
            continue
        if not logged:
            log.info(
                "resumed replay: first tick not in the topic",
                extra={"seq": seq, "skipped_before": skipped},
            )
            logged = True
        yield seq, tick


def _consumer(bootstrap: str, extra: Mapping[str, object]) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"stockstream-replay-resume-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            **extra,
        }
    )
