"""SIGKILL a dataflow process mid-stream, restart the cluster from its snapshots, and the final
Redis state equals an uninterrupted run's."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from dataflows.leaders.cluster import LocalCluster
from tests.dataflows.leaders.pipeline import (
    LEAN_TICKS,
    dataflow_env,
    dump_state,
    publish_file,
    run_bounded,
    with_db,
)

pytestmark = pytest.mark.integration


# Three dataflow runs over 300 000 real ticks (reference, killed, resumed): measured 10+ min
# with a CPU hog on a loaded 2-core machine, beyond the default 600 s.
@pytest.mark.timeout(1800)
def test_killed_process_resumes_to_the_same_state(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str], redis_url: str, tmp_path: Path
) -> None:
    topic = kafka_topic_factory("ticks", partitions=4)
    dlq = kafka_topic_factory("dlq", partitions=1)
    published = publish_file(kafka_bootstrap, topic, LEAN_TICKS)
    assert published > 300_000

    reference_url = with_db(redis_url, 4)
    redis.Redis.from_url(reference_url).flushdb()
    run_bounded(dataflow_env(kafka_bootstrap, topic, dlq, reference_url), 2, tmp_path / "ref")

    url = with_db(redis_url, 5)
    client = redis.Redis.from_url(url)
    client.flushdb()
    recovery = tmp_path / "recovery"
    env = dataflow_env(
        kafka_bootstrap,
        topic,
        dlq,
        url,
        RECOVERY_DIR=str(recovery),
        SNAPSHOT_INTERVAL_S="0.5",
        BATCH_SIZE="200",
    )
    cluster = LocalCluster(env, processes=2, log_dir=tmp_path / "killed")
    with cluster:
        deadline = time.monotonic() + 120
        # Mid-stream: windows are landing and a few snapshots are committed.
        while client.hget("window:15m", "end") is None or committed_epoch(recovery) < 4:
            assert time.monotonic() < deadline, cluster.log_tail()
            assert all(p.poll() is None for p in cluster.procs), "finished before the kill"
            time.sleep(0.05)
        cluster.kill(1, signal.SIGKILL)
        cluster.procs[1].wait(10)
        cluster.stop()  # the survivor cannot go on without its peer
    partial_state = dump_state(client)
    assert partial_state != dump_state(redis.Redis.from_url(reference_url)), "killed too late"

    run_bounded(env | {"LOG_LEVEL": "INFO"}, 2, tmp_path / "resumed")
    assert dump_state(client) == dump_state(redis.Redis.from_url(reference_url))
    resumed = decoded_counts(tmp_path / "resumed")
    assert len(resumed) == 2 and 0 < sum(resumed) < published, "did not resume from a snapshot"


def committed_epoch(recovery: Path) -> int:
    """The epoch every recovery partition has committed (0 before the first commit)."""
    epochs = []
    for path in recovery.glob("part-*.sqlite3"):
        with sqlite3.connect(path) as db:
            try:
                row = db.execute("SELECT MAX(commit_epoch) FROM commits").fetchone()
            except sqlite3.OperationalError:  # the dataflow is still creating its tables
                return 0
        epochs.append(row[0] or 0)
    return min(epochs, default=0)


def decoded_counts(log_dir: Path) -> list[int]:
    """`ticks_decoded` of each process's closing log line."""
    counts = []
    for path in sorted(log_dir.glob("dataflow-*.log")):
        for line in path.read_text().splitlines():
            record = json.loads(line) if line.startswith("{") else {}
            if record.get("message") == "stopped":
                counts.append(record["stockstream"]["ticks_decoded"])
    return counts
