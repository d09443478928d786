"""Rescale the dataflow between runs: 2 processes, then 3, resuming from the recovery store.

Two layouts of the store, as users have them:
- one directory shared by every process (a laptop, a ReadWriteMany volume);
- one directory per process, process 0's holding every partition (a StatefulSet with a
  volume per pod): a process that joins later starts with an empty directory.
Every window in Redis history equals the brute-force oracle over both slices.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from dataflows.leaders.cluster import LocalCluster
from dataflows.leaders.specs import DEFAULT_SPECS
from services.replay.reader import iter_ticks
from tests.dataflows.leaders.oracle import oracle_windows
from tests.dataflows.leaders.pipeline import (
    SSE_FILE,
    assert_history_matches,
    dataflow_env,
    produce,
    with_db,
)

pytestmark = pytest.mark.integration


def run_with_dirs(env: dict[str, str], dirs: list[Path], log_dir: Path) -> None:
    """Run the bounded dataflow with one process per entry of `dirs` (its RECOVERY_DIR)."""
    cluster = LocalCluster(env, processes=len(dirs), log_dir=log_dir)
    try:
        cluster.start_with_env([{"RECOVERY_DIR": str(d)} for d in dirs])
        codes = cluster.wait(300)
        assert codes == [0] * len(dirs), cluster.log_tail()
    finally:
        cluster.stop()


@pytest.mark.parametrize("layout", ["shared", "per-process", "same"])
def test_two_then_three_processes_equal_the_oracle(
    layout: str, kafka_bootstrap: str, kafka_topic_factory: Callable[..., str], redis_url: str,
    tmp_path: Path,
) -> None:
    # Two slices of the Shanghai session, 09:30 on and 10:15 on, 4000 real ticks each.
    slice_a = list(iter_ticks(SSE_FILE, from_time="09:30"))[:4000]
    slice_c = list(iter_ticks(SSE_FILE, from_time="10:15"))[:4000]
    topic = kafka_topic_factory("ticks", partitions=6)
    dlq = kafka_topic_factory("dlq", partitions=1)
    url = with_db(redis_url, 7)
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = dataflow_env(kafka_bootstrap, topic, dlq, url, SNAPSHOT_INTERVAL_S="0.5",
                       LOG_LEVEL="INFO")
    if layout == "same":
        first, second = [tmp_path / "rec"] * 2, [tmp_path / "rec"] * 2
    elif layout == "shared":
        first, second = [tmp_path / "rec"] * 2, [tmp_path / "rec"] * 3
    else:
        first = [tmp_path / "rec-0", tmp_path / "rec-1"]
        second = [*first, tmp_path / "rec-2"]

    produce(kafka_bootstrap, topic, slice_a)
    run_with_dirs(env, first, tmp_path / "two")
    produce(kafka_bootstrap, topic, slice_c)
    run_with_dirs(env, second, tmp_path / "three")

    assert_history_matches(client, oracle_windows([*slice_a, *slice_c], DEFAULT_SPECS),
                           DEFAULT_SPECS)
