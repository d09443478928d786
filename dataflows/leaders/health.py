"""Readiness and liveness of one dataflow process, decided from a few monotonic timestamps.

The dataflow's threads record what they observe in the process's `HEALTH` (thread-safe: the
Bytewax workers write it, the metrics server's thread reads it):

- `beat`: the dataflow loop advanced. Bytewax calls each source partition's `next_batch` over
  and over, with or without data, so an idle but healthy process beats too; the Redis sink's
  and the dead-letter sink's retry loops beat while they wait for their server (a restart
  would not bring it back).
- `partition_built`: a source partition was built, from its snapshot when there is one
  (Bytewax builds the partitions once the cluster is joined and the resume state is loaded).
- `broker_up` / `broker_down`: what the partitions' Kafka consumers learned of the broker
  (messages consumed, librdkafka's statistics listing a broker `UP`; `_ALL_BROKERS_DOWN`, or
  statistics listing none up).

One heartbeat per process: with `WORKERS_PER_PROCESS` > 1, one worker stuck while another
still beats is not seen as a stall.

`readiness` and `liveness` are pure functions of a `HealthView` (a copy of the state) and the
time: /readyz and /healthz answer their `Verdict`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

# librdkafka broker states (statistics JSON, `brokers.*.state`); only UP carries requests.
BROKER_UP = "UP"


class Verdict(NamedTuple):
    """A probe's answer: `ok` (200) or not (503), and why, for the body."""

    ok: bool
    reason: str


@dataclass(frozen=True)
class HealthView:
    """The recorded observations at one moment (times from `time.monotonic`)."""

    partitions: int = 0
    last_beat: float | None = None
    broker_up_at: float | None = None  # last sign of a reachable broker
    broker_down_since: float | None = None  # start of the current outage, if any


@dataclass(frozen=True)
class HealthBounds:
    """How long the loop may stand still (`stall_s`) and the broker stay unreachable
    (`broker_down_s`) before the process is reported stalled (liveness) or not ready."""

    stall_s: float = 60.0
    broker_down_s: float = 10.0


def liveness(view: HealthView, now: float, bounds: HealthBounds) -> Verdict:
    """Live unless the loop, once running, has not advanced for `bounds.stall_s`. A process
    that has not beaten yet is starting (joining its cluster, restoring a snapshot of any
    size): live, the startup is bounded by nothing here."""
    if view.last_beat is None:
        return Verdict(True, "starting")
    stalled_s = now - view.last_beat
    if stalled_s > bounds.stall_s:
        return Verdict(
            False, f"dataflow loop stalled for {stalled_s:.0f}s (bound {bounds.stall_s:g}s)"
        )
    return Verdict(True, "ok")


def readiness(view: HealthView, now: float, bounds: HealthBounds) -> Verdict:
    """Ready once the process has restored and polled its partitions and reached the broker,
    and as long as its loop advances and the broker was not lost for `bounds.broker_down_s`."""
    if view.last_beat is None or view.partitions == 0:
        return Verdict(False, not_started_reason(view))
    alive = liveness(view, now, bounds)
    if not alive.ok:
        return alive
    return broker_verdict(view, now, bounds)


def not_started_reason(view: HealthView) -> str:
    """Why a process whose loop has not polled a partition is not ready."""
    if view.last_beat is not None:
        return "no partition of the ticks topic assigned"
    if view.partitions:
        return "partitions restored, not polled yet"
    return "starting: joining the cluster, restoring the snapshot"


def broker_verdict(view: HealthView, now: float, bounds: HealthBounds) -> Verdict:
    """Ready once a consumer reached the broker, until it is lost for `broker_down_s`."""
    if view.broker_up_at is None:
        return Verdict(False, "broker not reached yet")
    if view.broker_down_since is not None:
        down_s = now - view.broker_down_since
        if down_s >= bounds.broker_down_s:
            return Verdict(False, f"broker unreachable since {down_s:.0f}s")
    return Verdict(True, "ready")


def progress_age(view: HealthView, now: float) -> float:
    """Seconds since the loop last advanced (0 before it starts)."""
    return 0.0 if view.last_beat is None else max(0.0, now - view.last_beat)


def stats_broker_up(stats: Mapping[str, Any]) -> bool:
    """Whether librdkafka's statistics (`stats_cb` JSON, decoded) list a broker that is up."""
    brokers = stats.get("brokers") or {}
    return any(broker.get("state") == BROKER_UP for broker in brokers.values())


@dataclass
class DataflowHealth:
    """The observations of one process, written by its workers, read by the probes."""

    _view: HealthView = field(default_factory=HealthView)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def view(self) -> HealthView:
        with self._lock:
            return self._view

    def beat(self, now: float | None = None) -> None:
        at = time.monotonic() if now is None else now
        with self._lock:
            self._view = replace(self._view, last_beat=at)

    def partition_built(self) -> None:
        with self._lock:
            self._view = replace(self._view, partitions=self._view.partitions + 1)

    def broker_up(self, now: float | None = None) -> None:
        at = time.monotonic() if now is None else now
        with self._lock:
            self._view = replace(self._view, broker_up_at=at, broker_down_since=None)

    def broker_down(self, now: float | None = None) -> None:
        """The broker is unreachable: the outage starts now unless it already had."""
        at = time.monotonic() if now is None else now
        with self._lock:
            if self._view.broker_down_since is None:
                self._view = replace(self._view, broker_down_since=at)

    def on_stats(self, stats_json: str) -> None:
        """librdkafka's `stats_cb`: a broker up or none."""
        if stats_broker_up(json.loads(stats_json)):
            self.broker_up()
        else:
            self.broker_down()


# The process's state: one per process, shared by its worker threads.
HEALTH = DataflowHealth()


def on_kafka_stats(stats_json: str) -> None:
    """The consumers' `stats_cb` (a module function: the source's config stays picklable)."""
    HEALTH.on_stats(stats_json)
