"""The windows source: each Kafka partition is read, decoded and windowed on one worker.

Bytewax routes a keyed step's items to the worker that owns the key's hash, not to the worker
that read them, so a `stateful` windows step after the Kafka source pickles most ticks across
workers and processes (measured: two processes ran at half the rate of one). Here the
partition's `PartitionEngine` lives inside the source partition, as a Kafka Streams task does:
ticks never leave the worker that reads them, only window reports and dead letters do, and the
snapshot holds the partition's offset and its engine together.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bytewax.connectors.kafka import KafkaSource
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from dataflows.leaders.engine import PartitionEngine, PartitionReport
from dataflows.leaders.future_guard import FutureGuard, GuardConfig, Released
from dataflows.leaders.health import HEALTH
from dataflows.leaders.inputs import DeadLetter, Received, dead_letter, decode_batch, letter_for
from dataflows.leaders.kafka_reader import PartitionReader, as_raw, consumer_config
from dataflows.leaders.specs import WindowSpec
from stockstream.metrics import (
    PARTITIONS_RESUMED,
    TICKS_HELD,
    WATERMARK_LAG,
    WINDOW_PHASE,
    WINDOWS_CLOSED,
)
from stockstream.ticks import Reason, Rejection, Tick, format_ts

SourceItem = PartitionReport | DeadLetter
Snapshot = bytes  # pickle of (Kafka offset, PartitionEngine, FutureGuard, [pending message])
CLOSE_PHASE = WINDOW_PHASE.labels(phase="close")


@dataclass(frozen=True)
class EngineConfig:
    """What a partition engine is built from; `idle_tick_s` None disables the idle advance
    (bounded input: only data and the end of input move the watermark). The idle advance
    starts only after `idle_timeout_s` without a message, so that ticks delayed by a broker
    outage or a producer restart shorter than that are not made late."""

    specs: tuple[WindowSpec, ...]
    lateness_ms: int
    top_n: int
    topic: str
    idle_tick_s: float | None
    guard: GuardConfig = GuardConfig()  # noqa: RUF009 - frozen, so one shared default is safe
    idle_timeout_s: float = 0.0

    def new_engine(self, partition: str) -> PartitionEngine:
        return PartitionEngine(partition, self.specs, self.lateness_ms, self.top_n)

    def new_guard(self, partition: str) -> FutureGuard:
        return FutureGuard(partition, self.guard)


def late_letter(msg: Received, tick: Tick, engine: PartitionEngine) -> DeadLetter:
    """The dead letter of a tick older than its partition's watermark."""
    detail = (
        f"event time {format_ts(tick.ts_ms)} is before the watermark "
        f"{format_ts(engine.watermark_ms or 0)} of partition {engine.partition}"
    )
    return letter_for(msg, Reason.LATE, detail)


def observe(engine: PartitionEngine, reports: list[PartitionReport]) -> list[PartitionReport]:
    """Record the watermark lag and the windows closed; pass the reports on."""
    if engine.watermark_ms is not None:
        WATERMARK_LAG.labels(engine.partition).set(time.time() - engine.watermark_ms / 1000)
    for report in reports:
        if report.parts:
            WINDOWS_CLOSED.labels(report.spec).inc(len(report.parts))
    return reports


class _WindowsPartition(StatefulSourcePartition[SourceItem, Snapshot]):
    def __init__(
        self,
        kafka: PartitionReader,
        engine: PartitionEngine,
        config: EngineConfig,
        guard: FutureGuard,
    ) -> None:
        self.kafka = kafka
        self.engine = engine
        self.guard = guard
        self.released: Released = []
        self.config = config
        self.last_arrival = time.monotonic()
        self.last_idle_check = self.last_arrival
        self.ended = False
        self.pending: list[Received] = []  # messages of a cut batch, not yet decoded

    def next_batch(self) -> list[SourceItem]:
        HEALTH.beat()  # Bytewax calls this over and over, data or not: the liveness heartbeat
        if self.ended:
            raise StopIteration
        messages: Sequence[Received]
        if self.pending:  # the rest of a batch cut at a window end: no new consume first
            messages, self.pending = self.pending, []
        else:
            try:
                messages = self.kafka.next_batch()
            except StopIteration:
                self.ended = True  # end of a bounded input: close every window, then stop
                letters: list[DeadLetter] = []
                self.guard.end_of_input(letters)
                TICKS_HELD.labels(self.engine.partition).set(0)
                return [*letters, *observe(self.engine, self.engine.close_all(time.time()))]
        out: list[SourceItem] = []
        engine = self.engine
        cut = self._ingest_until_close(messages, out)
        if cut < len(messages):
            self.pending = list(messages[cut:])
        if messages:
            TICKS_HELD.labels(engine.partition).set(len(self.guard.held))
        now = time.monotonic()
        if messages:
            self.last_arrival = now
        elif self.config.idle_tick_s is not None and (
            now - self.last_idle_check >= self.config.idle_tick_s
        ):
            self.last_idle_check = now
            engine.advance_idle(int((now - self.last_arrival - self.config.idle_timeout_s) * 1000))
            out.extend(engine.empty_reports())  # the ranking's heartbeat of an empty partition
        engine.prepare_ahead()  # the next end's older panes, while no window is closing
        started_s = time.time()
        reports = engine.close_ready(started_s)
        if any(report.parts for report in reports):
            CLOSE_PHASE.observe(time.time() - started_s)
        out.extend(observe(engine, reports))
        return out

    def _ingest_until_close(self, messages: Sequence[Received], out: list[SourceItem]) -> int:
        """Decode and ingest messages until one moves the watermark past a window end; the
        number taken. The batch is cut there so that the closed window is emitted now, not
        after the rest of the batch (which the next call takes before consuming again): a
        partition holds a closed window back by one message, not by a whole consume batch.
        Cutting never changes a result: the ticks after the cut meet the same watermark."""
        engine = self.engine
        guard, released = self.guard, self.released
        now_ms = int(time.time() * 1000)
        close_at_ms = engine.next_close_ms()
        taken = 0
        batch = decode_batch(messages)
        for message, decoded in batch:
            taken += 1
            if isinstance(decoded, Rejection):
                out.append(dead_letter(message, decoded))
                continue
            guard.admit(message, decoded, now_ms, released, out)  # type: ignore[arg-type]
            for passed_message, tick in released:
                if not engine.ingest(tick):
                    out.append(late_letter(passed_message, tick, engine))
            released.clear()
            if close_at_ms is None:  # the first ticks: the first window end is known now
                close_at_ms = engine.next_close_ms()
            watermark_ms = engine.watermark_ms
            if watermark_ms is not None and close_at_ms is not None and watermark_ms >= close_at_ms:
                break
        batch.close()  # counts the ticks decoded
        return taken

    def snapshot(self) -> Snapshot:
        pending = [as_raw(msg) for msg in self.pending]  # a consumed Message cannot be pickled
        return pickle.dumps(
            (self.kafka.snapshot(), self.engine, self.guard, pending),
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    def close(self) -> None:
        self.kafka.close()


class PartitionWindowsSource(FixedPartitionedSource[SourceItem, Snapshot]):
    """Every partition of the ticks topic, decoded and windowed where it is read.

    Emits each partition's `PartitionReport`s (one per spec whenever its watermark passes a
    pane boundary) and `DeadLetter`s (invalid and late messages)."""

    def __init__(
        self,
        brokers: list[str],
        config: EngineConfig,
        *,
        tail: bool,
        starting_offset: int,
        add_config: Mapping[str, str],
        batch_size: int,
    ) -> None:
        self.config = config
        self.starting_offset = starting_offset
        self.batch_size = batch_size
        self.consumer_config = consumer_config(brokers, tail=tail, add_config=add_config)
        self.discovery = KafkaSource(brokers, [config.topic], add_config=dict(add_config))

    def list_parts(self) -> list[str]:
        """`<partition>-<topic>` for every partition of the topic (Bytewax's naming)."""
        return self.discovery.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: Snapshot | None
    ) -> _WindowsPartition:
        offset: int | None = None
        pending: list[Received] = []
        engine: PartitionEngine | None = None
        guard: FutureGuard | None = None
        if resume_state is not None:
            state = pickle.loads(resume_state)  # noqa: S301 - our own snapshot
            offset, engine = state[0], state[1]
            guard = state[2] if len(state) > 2 else None  # snapshots before the guard: none
            pending = state[3] if len(state) > 3 else []  # before batches were cut: none
            PARTITIONS_RESUMED.inc()
        index, topic = for_part.split("-", 1)
        kafka = PartitionReader(
            self.consumer_config,
            topic,
            int(index),
            self.starting_offset if offset is None else offset,
            self.batch_size,
        )
        if guard is not None:
            guard.config = self.config.guard  # settings may have changed since the snapshot
        part = _WindowsPartition(
            kafka,
            engine or self.config.new_engine(index),
            self.config,
            guard or self.config.new_guard(index),
        )
        part.pending = pending
        HEALTH.partition_built()
        return part
