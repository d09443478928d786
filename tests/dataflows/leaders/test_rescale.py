"""Rescale the dataflow between runs, resuming from the recovery store.

Two layouts of the store, as users have them:
- one directory shared by every process (a laptop, a ReadWriteMany volume);
- one directory per process, process 0's holding every partition (a StatefulSet with a
  volume per pod): a process that joins later starts with an empty directory.
Two slices of the Shanghai session (09:30 on and 10:15 on, 4000 real ticks each) go through
two runs; every window in Redis history equals the brute-force oracle over both slices.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from dataflows.leaders.cluster import LocalCluster
from dataflows.leaders.specs import DEFAULT_SPECS
from services.replay.reader import iter_ticks
from stockstream.ticks import Tick
from tests.dataflows.leaders.oracle import oracle_windows
from tests.dataflows.leaders.pipeline import (
    SSE_FILE,
    assert_history_matches,
    dataflow_env,
    produce,
    with_db,
)

pytestmark = pytest.mark.integration


@dataclass
class Case:
    """A fresh topic, dead-letter topic and Redis database, and the two slices."""

    bootstrap: str
    topic: str
    client: redis.Redis
    env: dict[str, str]
    slice_a: list[Tick]
    slice_c: list[Tick]

    def latest_end_ms(self) -> int:
        return int(self.client.hget("window:1m", "end") or 0) * 1000

    def assert_equals_oracle(self) -> None:
        oracle = oracle_windows([*self.slice_a, *self.slice_c], DEFAULT_SPECS)
        assert_history_matches(self.client, oracle, DEFAULT_SPECS)


@pytest.fixture
def case(kafka_bootstrap: str, kafka_topic_factory: Callable[..., str], redis_url: str) -> Case:
    topic = kafka_topic_factory("ticks", partitions=6)
    dlq = kafka_topic_factory("dlq", partitions=1)
    url = with_db(redis_url, 7)
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = dataflow_env(
        kafka_bootstrap, topic, dlq, url, SNAPSHOT_INTERVAL_S="0.5", LOG_LEVEL="INFO"
    )
    return Case(
        kafka_bootstrap,
        topic,
        client,
        env,
        list(iter_ticks(SSE_FILE, from_time="09:30"))[:4000],
        list(iter_ticks(SSE_FILE, from_time="10:15"))[:4000],
    )


def start(env: dict[str, str], dirs: list[Path], log_dir: Path) -> LocalCluster:
    """Start one process per entry of `dirs` (its RECOVERY_DIR)."""
    cluster = LocalCluster(env, processes=len(dirs), log_dir=log_dir)
    return cluster.start_with_env([{"RECOVERY_DIR": str(d)} for d in dirs])


def run_bounded_with_dirs(env: dict[str, str], dirs: list[Path], log_dir: Path) -> None:
    cluster = start(env | {"BOUNDED": "true"}, dirs, log_dir)
    try:
        assert cluster.wait(300) == [0] * len(dirs), cluster.log_tail()
    finally:
        cluster.stop()


def wait_for(
    predicate: Callable[[], bool], what: str, cluster: LocalCluster, timeout_s: float = 300
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        exited = [p.returncode for p in cluster.procs if p.poll() is not None]
        assert not exited, f"a process exited {exited}:\n{cluster.log_tail()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{cluster.log_tail()}"
        time.sleep(0.2)


# name: (layout, processes of the first run, processes of the second run)
LAYOUTS = {
    "2 -> 3 shared": ("shared", 2, 3),
    "2 -> 3 per-process": ("per-process", 2, 3),
    "3 -> 2 per-process": ("per-process", 3, 2),
}


def directories(tmp_path: Path, layout: str, processes: int) -> list[Path]:
    if layout == "shared":
        return [tmp_path / "rec"] * processes
    return [tmp_path / f"rec-{i}" for i in range(processes)]


@pytest.mark.parametrize("name", LAYOUTS)
def test_a_bounded_run_continues_with_another_size(name: str, case: Case, tmp_path: Path) -> None:
    """Bytewax's continuation: each run reads to the end of the topic and snapshots there."""
    layout, first, second = LAYOUTS[name]
    produce(case.bootstrap, case.topic, case.slice_a)
    run_bounded_with_dirs(case.env, directories(tmp_path, layout, first), tmp_path / "first")
    produce(case.bootstrap, case.topic, case.slice_c)
    run_bounded_with_dirs(case.env, directories(tmp_path, layout, second), tmp_path / "second")
    case.assert_equals_oracle()


def test_a_live_cluster_stopped_at_two_goes_on_at_three(case: Case, tmp_path: Path) -> None:
    """As in Kubernetes: tail mode, one recovery directory per process, the 2-process cluster
    stopped while live (SIGTERM, as a pod deletion does), 3 processes started, then new data."""
    env = case.env | {
        "BOUNDED": "false",
        "SNAPSHOT_INTERVAL_S": "1",
        "IDLE_TICK_S": "0.5",
        "IDLE_TIMEOUT_S": "3",
    }
    dirs = directories(tmp_path, "per-process", 3)
    produce(case.bootstrap, case.topic, case.slice_a)
    two = start(env, dirs[:2], tmp_path / "two")
    try:
        wait_for(lambda: case.latest_end_ms() >= case.slice_a[-1].ts_ms, "slice A", two)
        time.sleep(3)  # a few more snapshots
    finally:
        two.stop()
    three = start(env, dirs, tmp_path / "three")
    try:
        time.sleep(5)  # the new cluster forms before the data comes
        produce(case.bootstrap, case.topic, case.slice_c)
        wait_for(lambda: case.latest_end_ms() >= case.slice_c[-1].ts_ms, "slice C", three)
    finally:
        three.stop()
    run_bounded_with_dirs(env, dirs, tmp_path / "final")  # closes the last windows
    case.assert_equals_oracle()
