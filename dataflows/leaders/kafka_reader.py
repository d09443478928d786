"""One Kafka partition read from an offset, in batches of confluent-kafka's own messages.

Bytewax's `KafkaSource` partition copies every message into a `KafkaSourceMessage` dataclass
(eight fields, eight method calls) before anyone looks at it: about 15 % of a dataflow
process's CPU (py-spy, 1M ticks). This reader hands the windows source the `Message`s that
`Consumer.consume` returned; the few messages that must outlive a batch (a dead letter, a tick
the future guard holds, the rest of a cut batch in a snapshot) are copied with `as_raw`.
Partition discovery stays with Bytewax's `KafkaSource.list_parts`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from bytewax.connectors.kafka import KafkaSourceMessage
from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka import KafkaError as ConfluentKafkaError

from dataflows.leaders.health import HEALTH, on_kafka_stats
from stockstream.kafka import librdkafka_logger
from stockstream.log_throttle import LogThrottle
from stockstream.metrics import KAFKA_CONSUMER_ERRORS

log = logging.getLogger(__name__)
# A broker down is reported by every consumer every few milliseconds: one line per error
# code now, then one per 30 s with the count suppressed (the metric counts every one).
_errors_log = LogThrottle(log)

RawMessage = KafkaSourceMessage[bytes | None, bytes | None]  # picklable; snapshots hold these
Received = Message | RawMessage  # what the windows source decodes


def as_raw(msg: Received) -> RawMessage:
    """A message that can be kept and pickled (a consumed `Message` cannot)."""
    if not isinstance(msg, Message):
        return msg
    return KafkaSourceMessage(
        key=msg.key(),
        value=msg.value(),
        topic=msg.topic(),
        headers=cast(list[tuple[str, bytes]], msg.headers() or []),
        latency=msg.latency(),
        offset=msg.offset(),
        partition=msg.partition(),
        timestamp=msg.timestamp(),
    )


def count_consumer_error(err: ConfluentKafkaError) -> None:
    """librdkafka's `error_cb`, and any error message a batch holds: a broker down, a
    transport failure... (librdkafka reconnects on its own); counted and logged (throttled per
    error code) so that an outage is visible."""
    KAFKA_CONSUMER_ERRORS.labels(err.name()).inc()
    if err.code() == ConfluentKafkaError._ALL_BROKERS_DOWN:
        HEALTH.broker_down()
    _errors_log.log(
        logging.WARNING, "kafka consumer error", key=err.name(), extra={"error": err.str()}
    )


def consumer_config(
    brokers: list[str], *, tail: bool, add_config: Mapping[str, Any]
) -> dict[str, Any]:
    """A consumer of assigned partitions: offsets live in the dataflow's snapshots, never in
    a consumer group; a bounded read (`tail` False) learns where each partition ends."""
    return {
        "group.id": "stockstream-unused",  # required by librdkafka; assign() joins no group
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "bootstrap.servers": ",".join(brokers),
        "enable.partition.eof": "false" if tail else "true",
        "error_cb": count_consumer_error,
        # The readiness probe's view of the broker (dataflows/leaders/health.py): served by
        # the consume calls, one small JSON document a second per partition.
        "stats_cb": on_kafka_stats,
        "statistics.interval.ms": STATS_INTERVAL_MS,
        "logger": librdkafka_logger(),
        **add_config,
    }


STATS_INTERVAL_MS = 1000


def _next_offset(msg: Message) -> int:
    offset = msg.offset()
    if offset is None:  # only a produced message lacks one
        raise ValueError("a consumed message without an offset")
    return offset + 1


class PartitionReader:
    """Batches of up to `batch_size` messages of one partition, from `offset` on. A bounded
    read raises StopIteration on the call after the one that reached the partition's end."""

    def __init__(
        self,
        config: Mapping[str, Any],
        topic: str,
        partition: int,
        offset: int,
        batch_size: int,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset  # of the next message to read (or OFFSET_BEGINNING / OFFSET_END)
        self.batch_size = batch_size
        self.ended = False
        self.consumer = Consumer(dict(config))
        self.consumer.assign([TopicPartition(topic, partition, offset)])

    def next_batch(self) -> list[Message]:
        if self.ended:
            raise StopIteration
        messages: list[Message] = self.consumer.consume(self.batch_size, 0.001)
        if not messages:
            return messages
        HEALTH.broker_up()
        for index, msg in enumerate(messages):
            if msg.error() is not None:  # rare: drop the error messages from the batch
                return self._without_errors(messages, index)
        self.offset = _next_offset(messages[-1])
        return messages

    def _without_errors(self, messages: list[Message], first_error: int) -> list[Message]:
        kept = messages[:first_error]
        for msg in messages[first_error:]:
            error = msg.error()
            if error is None:
                kept.append(msg)
            elif error.code() == ConfluentKafkaError._PARTITION_EOF:
                self.ended = True  # the batch is still emitted; the next call stops
                break
            else:
                count_consumer_error(error)
        if kept:
            self.offset = _next_offset(kept[-1])
        return kept

    def snapshot(self) -> int:
        return self.offset

    def close(self) -> None:
        self.consumer.close()
