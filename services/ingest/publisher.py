"""Publish ticks to Kafka through a bounded local buffer, never losing one silently.

Providers hand batches to `submit` (which never blocks); a sender thread moves them into
the idempotent, `acks=all` confluent-kafka producer (`stockstream.kafka`), keeping at most
`inflight_max` unacknowledged in librdkafka, which retries until the broker is back
(`message.timeout.ms` = `DELIVERY_TIMEOUT_MS`, 0 = forever). During an outage ticks wait in
the local buffer; when it holds `buffer_max` the oldest is dropped and counted. `close`
sends everything buffered and flushes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message

from stockstream.kafka import DeliveryStats, create_producer
from stockstream.metrics import (
    INGEST_BUFFER_DEPTH,
    INGEST_BUFFER_DROPPED,
    INGEST_DELIVERY_ERRORS,
    INGEST_TICKS_PUBLISHED,
    INGEST_TICKS_RECEIVED,
    export_ingest_provider,
)
from stockstream.ticks import SCHEMA_VERSION, Tick, format_ts

log = logging.getLogger(__name__)

_format_ts = lru_cache(maxsize=16_384)(format_ts)
_SEND_CHUNK = 5000


def encode_stamped(tick: Tick, ingest_ts_ms: int) -> tuple[bytes, bytes]:
    """`stockstream.ticks.encode` of the tick stamped with `ingest_ts_ms` (same bytes),
    with timestamp strings cached: ticks of one batch share their times."""
    body: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "symbol": tick.symbol,
        "price": tick.price,
        "ts": _format_ts(tick.ts_ms),
        "source": tick.source,
    }
    if tick.size is not None:
        body["size"] = tick.size
    body["ingest_ts"] = _format_ts(ingest_ts_ms)
    return tick.symbol.encode(), orjson.dumps(body)


class Publisher:
    """Bounded buffer + sender thread + producer for one topic."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        provider: str,
        buffer_max: int = 1_000_000,
        inflight_max: int = 100_000,
        delivery_timeout_ms: int = 0,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.provider = provider
        export_ingest_provider(provider)
        self.buffer_max = buffer_max
        self.inflight_max = inflight_max
        self.submitted = 0
        self.dropped = 0
        self.stats = DeliveryStats()
        self.broker_down = False
        self._buffer: deque[tuple[Tick, int]] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._deadline: float | None = None
        config = {
            "queue.buffering.max.messages": inflight_max,
            "message.timeout.ms": delivery_timeout_ms,
            "error_cb": self._on_error,
            **(extra or {}),
        }
        self._producer = create_producer(
            bootstrap,
            client_id=f"stockstream-ingest-{provider}",
            extra=config,
            on_delivery=self._on_delivery,
        )
        self._thread = threading.Thread(target=self._send_loop, name="publisher", daemon=True)

    def start(self) -> Publisher:
        """Start the sender thread."""
        self._thread.start()
        return self

    def submit(self, ticks: Sequence[Tick], ingest_ts_ms: int) -> None:
        """Accept ticks (stamped with the time the provider saw them); never blocks."""
        dropped = 0
        with self._cond:
            for tick in ticks:
                if len(self._buffer) >= self.buffer_max:
                    self._buffer.popleft()
                    dropped += 1
                self._buffer.append((tick, ingest_ts_ms))
            self.submitted += len(ticks)
            self.dropped += dropped
            self._cond.notify()
        INGEST_TICKS_RECEIVED.labels(self.provider).inc(len(ticks))
        if dropped:
            INGEST_BUFFER_DROPPED.labels(self.provider).inc(dropped)
            log.warning(
                "buffer full: oldest ticks dropped",
                extra={"dropped": dropped, "dropped_total": self.dropped},
            )

    @property
    def depth(self) -> int:
        """Ticks not yet acknowledged (buffered plus in flight)."""
        return len(self._buffer) + len(self._producer)

    def ready(self) -> bool:
        """False while librdkafka reports every broker down."""
        return not self.broker_down

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        self.stats(err, msg)
        if err is None:
            self.broker_down = False
            INGEST_TICKS_PUBLISHED.labels(self.provider).inc()
        else:
            INGEST_DELIVERY_ERRORS.labels(self.provider).inc()

    def _on_error(self, err: KafkaError) -> None:
        """librdkafka reconnects by itself; only "all brokers down" changes readiness."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.broker_down = True
            log.warning("all brokers down: buffering", extra={"error": err.str()})
        else:
            log.debug("kafka client error", extra={"error": err.str()})

    def _take(self) -> tuple[list[tuple[Tick, int]], bool]:
        with self._cond:
            if not self._buffer and not self._closing:
                self._cond.wait(0.05)
            room = max(0, self.inflight_max - len(self._producer))
            count = min(room, len(self._buffer), _SEND_CHUNK)
            taken = [self._buffer.popleft() for _ in range(count)]
            late = self._deadline is not None and time.monotonic() >= self._deadline
            return taken, self._closing and (not self._buffer or late)

    def _send_loop(self) -> None:
        producer = self._producer
        while True:
            taken, done = self._take()
            for tick, ingest_ts_ms in taken:
                key, value = encode_stamped(tick, ingest_ts_ms)
                while True:
                    try:
                        producer.produce(self.topic, value=value, key=key)
                        break
                    except BufferError:  # only if another client shares the limit
                        producer.poll(0.05)
            producer.poll(0 if taken else 0.05)
            INGEST_BUFFER_DEPTH.set(self.depth)
            if done:
                return

    def close(self, timeout_s: float) -> int:
        """Send everything buffered and flush, for at most `timeout_s`; returns the ticks
        still unacknowledged (buffered or in flight) then."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._closing = True
            self._deadline = deadline
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()
        remaining = self._producer.flush(max(0.0, deadline - time.monotonic()))
        remaining += len(self._buffer)
        INGEST_BUFFER_DEPTH.set(remaining)
        return remaining
