"""Publish ticks to the broker: key = symbol, value = `encode(tick)` stamped with
`ingest_ts` at send time; deliveries counted; flushed on exit and on SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import islice
from types import FrameType

from confluent_kafka import Producer

from services.replay.formats import epoch_ms
from services.replay.pacing import Pacer, looped
from services.replay.reader import iter_ticks
from services.replay.resume import SEQ_HEADER, partition_for, read_resume_point, unsent
from services.replay.settings import ReplaySettings
from stockstream.kafka import DeliveryStats, create_producer, produce
from stockstream.metrics import REPLAY_TICKS_PUBLISHED
from stockstream.ticks import Tick, encode

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay run did: ticks handed to the producer, broker acknowledgements,
    failures, messages still unacknowledged after the final flush, and whether a stop
    (signal) ended it early."""

    published: int
    delivered: int
    failed: int
    undelivered: int
    stopped: bool

    @property
    def ok(self) -> bool:
        """Every published tick was acknowledged."""
        return self.failed == 0 and self.undelivered == 0


def wall_clock_ms() -> int:
    """Now, as epoch milliseconds (UTC)."""
    return epoch_ms(datetime.now(UTC))


def stamped(tick: Tick, ingest_ts_ms: int) -> Tick:
    """The tick as published: with the time the producer saw it."""
    return replace(tick, ingest_ts_ms=ingest_ts_ms)


def replay_ticks(settings: ReplaySettings) -> Iterator[Tick]:
    """The ticks a run publishes: the file's (looped if asked), cut at `replay_limit`."""

    def read() -> Iterator[Tick]:
        return iter_ticks(
            settings.replay_file, settings.replay_format, settings.replay_from, settings.symbols
        )

    ticks = looped(read, settings.replay_loop)
    return ticks if settings.replay_limit is None else islice(ticks, settings.replay_limit)


def publish(
    ticks: Iterable[tuple[int, Tick]],
    producer: Producer,
    topic: str,
    *,
    pacer: Pacer,
    stop: threading.Event,
    now_ms: Callable[[], int] = wall_clock_ms,
    partitions: int | None = None,
) -> int:
    """Send each (replay sequence, tick) when `pacer` says it is due, until the ticks end or
    `stop` is set, with its `replay_seq` header (and, given the topic's `partitions`, to
    `partition_for(key)` explicitly). Returns the number of ticks handed to the producer."""
    count = 0
    for seq, tick in ticks:
        if stop.is_set():
            break
        pacer.wait(tick.ts_ms)
        if stop.is_set():
            break
        key, value = encode(stamped(tick, now_ms()))
        produce(
            producer,
            topic,
            key,
            value,
            headers=[(SEQ_HEADER, str(seq).encode())],
            partition=-1 if partitions is None else partition_for(key, partitions),
        )
        REPLAY_TICKS_PUBLISHED.inc()
        count += 1
    return count


def run_replay(settings: ReplaySettings, stop: threading.Event | None = None) -> ReplayResult:
    """Replay `settings.replay_file` to `settings.ticks_topic`, then flush."""
    stop = stop or threading.Event()
    stats = DeliveryStats()
    producer = create_producer(
        settings.kafka_bootstrap_servers,
        client_id="stockstream-replay",
        extra=settings.kafka_extra_config,
        on_delivery=stats,
    )
    pacer = Pacer(settings.replay_speed, sleep=stop.wait)
    published = 0
    ticks: Iterable[tuple[int, Tick]] = enumerate(replay_ticks(settings))
    partitions: int | None = None
    if settings.replay_resume:
        point = read_resume_point(
            settings.kafka_bootstrap_servers, settings.ticks_topic, settings.kafka_extra_config
        )
        log.info("replay resumes after", extra={"last_seq_by_partition": list(point.last_seq)})
        partitions = point.partitions
        ticks = unsent(replay_ticks(settings), point, {})
    try:
        published = publish(
            ticks, producer, settings.ticks_topic, pacer=pacer, stop=stop, partitions=partitions
        )
    finally:
        undelivered = producer.flush(settings.replay_flush_timeout_s)
    return ReplayResult(published, stats.delivered, stats.failed, undelivered, stop.is_set())


def stop_on_signals(
    stop: threading.Event, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
) -> None:
    """Set `stop` on SIGTERM/SIGINT, so the run ends its current tick and flushes.
    Call from the main thread."""

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("stopping on signal", extra={"signal": signal.Signals(signum).name})
        stop.set()

    for sig in signals:
        signal.signal(sig, handle)
