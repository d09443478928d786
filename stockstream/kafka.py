"""Kafka client helpers shared by every producer: one configuration, delivery accounting,
back-pressure, and idempotent topic creation.

Typical use::

    stats = DeliveryStats()
    producer = create_producer(settings.kafka_bootstrap_servers, client_id="replay",
                               extra=settings.kafka_extra_config, on_delivery=stats)
    produce(producer, settings.ticks_topic, key, value)
    undelivered = producer.flush(10)

Producers are idempotent with `acks=all`: a retried send never duplicates or reorders a
message within a partition, so the per-symbol order of a producer survives broker failover.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from stockstream.log_throttle import ThrottleFilter
from stockstream.metrics import PRODUCER_DELIVERY_ERRORS

log = logging.getLogger(__name__)


def librdkafka_logger() -> logging.Logger:
    """Where the project's Kafka clients send librdkafka's own log lines (`logger` in their
    configuration): ECS lines like every other, throttled per message (a broker down repeats
    "Connect to ... failed" every few milliseconds per client)."""
    logger = logging.getLogger("librdkafka")
    if not any(isinstance(f, ThrottleFilter) for f in logger.filters):
        logger.addFilter(ThrottleFilter())
    return logger


#: Settings every producer starts from; `extra` (e.g. SASL) is applied on top.
PRODUCER_DEFAULTS: Mapping[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 10,
    "batch.size": 262_144,
    "compression.type": "lz4",
    "message.timeout.ms": 120_000,
}

_ERRORS_LOGGED = 10


def producer_config(
    bootstrap: str, *, client_id: str = "stockstream", extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The librdkafka configuration of a project producer (defaults, then `extra`)."""
    return {
        **PRODUCER_DEFAULTS,
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "logger": librdkafka_logger(),
        **(extra or {}),
    }


@dataclass
class DeliveryStats:
    """Delivery callback that counts acknowledged and failed messages.

    Failures also increment `stockstream_producer_delivery_errors`; the first few are logged.
    The callback runs inside `Producer.poll()`/`flush()`, on the thread that calls them.
    """

    delivered: int = 0
    failed: int = 0
    last_error: str | None = None

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        self.last_error = err.str()
        PRODUCER_DELIVERY_ERRORS.inc()
        if self.failed <= _ERRORS_LOGGED:
            log.error(
                "delivery failed",
                extra={"topic": msg.topic(), "key": _key_text(msg.key()), "error": err.str()},
            )


def _key_text(key: bytes | str | None) -> str | None:
    return key.decode(errors="replace") if isinstance(key, bytes) else key


def _count_errors(err: KafkaError | None, msg: Message) -> None:
    if err is not None:
        PRODUCER_DELIVERY_ERRORS.inc()


def create_producer(
    bootstrap: str,
    *,
    client_id: str = "stockstream",
    extra: Mapping[str, Any] | None = None,
    on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
) -> Producer:
    """A producer with `producer_config`; delivery reports go to `on_delivery` (or only
    count errors in the metric when it is None)."""
    config = producer_config(bootstrap, client_id=client_id, extra=extra)
    config["on_delivery"] = on_delivery if on_delivery is not None else _count_errors
    return Producer(config)


def produce(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    *,
    headers: list[tuple[str, str | bytes | None]] | None = None,
    full_queue_wait_s: float = 0.1,
    partition: int = -1,
) -> None:
    """Queue one message, serving delivery callbacks; when the local queue is full, wait
    for deliveries (`poll`) and try again instead of dropping or raising. `partition` -1: the
    default partitioner's choice."""
    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=headers, partition=partition)
        except BufferError:
            producer.poll(full_queue_wait_s)
            continue
        producer.poll(0)
        return


def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    extra: Mapping[str, Any] | None = None,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    timeout_s: float = 30.0,
) -> dict[str, bool]:
    """Create each topic `{name: partitions}` that does not exist yet (replication factor
    = the broker's default; topic settings from `configs[name]`). Returns `{name: created}`;
    an existing topic is left as is, with a warning when its partition count differs. Raises
    `KafkaException` otherwise."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **(extra or {})})
    wanted = [
        NewTopic(
            name,
            num_partitions=n,
            replication_factor=-1,
            config=dict((configs or {}).get(name, {})),
        )
        for name, n in topics.items()
    ]
    futures = admin.create_topics(wanted, operation_timeout=timeout_s, request_timeout=timeout_s)
    created: dict[str, bool] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
            created[name] = True
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            created[name] = False
    _warn_partition_mismatch(admin, {n: p for n, p in topics.items() if not created[n]}, timeout_s)
    return created


def _warn_partition_mismatch(
    admin: AdminClient, topics: Mapping[str, int], timeout_s: float
) -> None:
    if not topics:
        return
    metadata = admin.list_topics(timeout=timeout_s).topics
    for name, partitions in topics.items():
        actual = len(metadata[name].partitions) if name in metadata else None
        if actual != partitions:
            log.warning(
                "topic exists with a different partition count",
                extra={"topic": name, "partitions": actual, "wanted": partitions},
            )
