"""The probes' pure decisions (dataflows/leaders/health.py): case tables over timestamps."""

from __future__ import annotations

import json
import threading

import pytest

from dataflows.leaders.health import (
    DataflowHealth,
    HealthBounds,
    HealthView,
    liveness,
    progress_age,
    readiness,
    stats_broker_up,
)
from stockstream.metrics import probe_answer

BOUNDS = HealthBounds(stall_s=60.0, broker_down_s=10.0)
NOW = 1000.0
RUNNING = HealthView(partitions=2, last_beat=NOW - 0.5, broker_up_at=NOW - 1)


@pytest.mark.parametrize(
    ("view", "ok", "reason"),
    [
        (HealthView(), True, "starting"),  # restoring a snapshot of any size: never stalled
        (HealthView(partitions=3), True, "starting"),
        (RUNNING, True, "ok"),
        (HealthView(partitions=1, last_beat=NOW - 60), True, "ok"),  # the bound itself
        (
            HealthView(partitions=1, last_beat=NOW - 61),
            False,
            "dataflow loop stalled for 61s (bound 60s)",
        ),
        (
            HealthView(partitions=1, last_beat=NOW - 600, broker_up_at=NOW),
            False,
            "dataflow loop stalled for 600s (bound 60s)",
        ),
    ],
)
def test_liveness(view: HealthView, ok: bool, reason: str) -> None:
    assert liveness(view, NOW, BOUNDS) == (ok, reason)


@pytest.mark.parametrize(
    ("view", "ok", "reason"),
    [
        (HealthView(), False, "starting: joining the cluster, restoring the snapshot"),
        (HealthView(partitions=2), False, "partitions restored, not polled yet"),
        (HealthView(last_beat=NOW), False, "no partition of the ticks topic assigned"),
        (HealthView(partitions=2, last_beat=NOW), False, "broker not reached yet"),
        (
            HealthView(partitions=2, last_beat=NOW, broker_down_since=NOW - 30),
            False,
            "broker not reached yet",
        ),
        (RUNNING, True, "ready"),
        # an outage shorter than the bound does not flap readiness
        (
            HealthView(
                partitions=2, last_beat=NOW, broker_up_at=NOW - 20, broker_down_since=NOW - 9.5
            ),
            True,
            "ready",
        ),
        (
            HealthView(
                partitions=2, last_beat=NOW, broker_up_at=NOW - 20, broker_down_since=NOW - 12.2
            ),
            False,
            "broker unreachable since 12s",
        ),
        (
            HealthView(partitions=2, last_beat=NOW - 61, broker_up_at=NOW),
            False,
            "dataflow loop stalled for 61s (bound 60s)",
        ),
    ],
)
def test_readiness(view: HealthView, ok: bool, reason: str) -> None:
    assert readiness(view, NOW, BOUNDS) == (ok, reason)


def test_a_zero_broker_bound_reports_the_outage_at_once() -> None:
    view = HealthView(partitions=1, last_beat=NOW, broker_up_at=NOW - 5, broker_down_since=NOW)
    assert readiness(view, NOW, HealthBounds(broker_down_s=0)) == (
        False,
        "broker unreachable since 0s",
    )


@pytest.mark.parametrize(
    ("view", "age"),
    [(HealthView(), 0.0), (RUNNING, 0.5), (HealthView(last_beat=NOW + 1), 0.0)],
)
def test_progress_age(view: HealthView, age: float) -> None:
    assert progress_age(view, NOW) == age


@pytest.mark.parametrize(
    ("states", "up"),
    [
        ([], False),
        (["INIT"], False),
        (["DOWN", "CONNECT", "TRY_CONNECT"], False),
        (["DOWN", "UP"], True),
        (["UP"], True),
    ],
)
def test_stats_broker_up(states: list[str], up: bool) -> None:
    stats = {"brokers": {f"127.0.0.1:9092/{i}": {"state": s} for i, s in enumerate(states)}}
    assert stats_broker_up(stats) is up


def test_the_state_records_an_outage_from_its_start_until_the_broker_is_back() -> None:
    health = DataflowHealth()
    health.partition_built()
    health.beat(now=1.0)
    health.broker_up(now=1.0)
    health.broker_down(now=2.0)
    health.broker_down(now=5.0)  # the same outage: it started at 2
    assert health.view().broker_down_since == 2.0
    assert readiness(health.view(), 12.0, BOUNDS) == (False, "broker unreachable since 10s")
    health.on_stats(json.dumps({"brokers": {"b/1": {"state": "UP"}}}))
    assert health.view().broker_down_since is None
    health.on_stats(json.dumps({"brokers": {"b/1": {"state": "DOWN"}}}))
    assert health.view().broker_down_since is not None


def test_the_state_counts_partitions_built_by_several_threads() -> None:
    health = DataflowHealth()

    def build_many() -> None:
        for _ in range(500):
            health.partition_built()

    threads = [threading.Thread(target=build_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert health.view().partitions == 2000


@pytest.mark.parametrize(
    ("result", "status", "body"),
    [
        (True, 200, b"ready\n"),  # the other services' plain booleans answer as before
        (False, 503, b"not ready\n"),
        ((False, "broker unreachable since 12s"), 503, b"broker unreachable since 12s\n"),
        ((True, "ready"), 200, b"ready\n"),
    ],
)
def test_probe_answer(result: bool | tuple[bool, str], status: int, body: bytes) -> None:
    assert probe_answer(result, "ready", "not ready") == (status, body)
