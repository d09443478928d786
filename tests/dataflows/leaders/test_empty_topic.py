"""The normal first deployment: the dataflow starts in tail mode (unbounded) on an EMPTY ticks
topic, then the producers publish a real SSE slice. Found on the real cluster before the
ranking waited for every partition: the first windows were ranked from whichever partitions
reported first (`history:means:1m:1638322210` held 7 of 30 symbols, never corrected).

Two producers, as two ingestion shards: the symbols of partitions 0 and 1 first, those of
partition 2 a few seconds later (well within the grace, IDLE_TIMEOUT_S), so the ranking must
wait for partition 2, not rank without it and correct afterwards. Partition 3 never gets a
tick (no symbol of it is replayed): it must not block the windows forever, only hold each
back for IDLE_TIMEOUT_S. Once the live run has ranked the 1m windows up to the end of the
slice, it is stopped and run bounded from its snapshots to close the last (15-minute) windows
at once, as tests/faults_support.py does. Every window in Redis history then equals the
oracle, and no window was corrected, with 1 and with 2 processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from confluent_kafka import Consumer, TopicPartition

from dataflows.leaders.cluster import LocalCluster
from dataflows.leaders.specs import DEFAULT_SPECS
from services.replay.producer import replay_ticks, run_replay
from services.replay.reader import iter_ticks
from services.replay.resume import partition_for
from services.replay.settings import ReplaySettings
from stockstream.embedded.ports import free_port
from stockstream.ticks import Tick, encode
from tests.dataflows.leaders.oracle import oracle_windows, split_late
from tests.dataflows.leaders.pipeline import SSE_FILE, assert_history_matches, dataflow_env, with_db
from tests.dataflows.leaders.test_recovery import committed_epoch
from tests.faults_support import scrape, total, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PARTITIONS = 4
SHARDS = ((0, 1), (2,))  # the partitions whose symbols each producer replays, in start order
EMPTY_PARTITION = 3
SECOND_SHARD_DELAY_S = 3.0
FROM_LOCAL = "09:30"
LIMIT = 900  # ticks per shard: ~4 minutes of its 11 stocks
IDLE_TIMEOUT_S = 30  # the default: the grace of an empty partition


def shard_symbols(partitions: tuple[int, ...]) -> str:
    """The SSE symbols the partitioner puts in `partitions`."""
    keys = {t.symbol: encode(t)[0] for t in iter_ticks(SSE_FILE, from_time=FROM_LOCAL)}
    kept = sorted(s for s, key in keys.items() if partition_for(key, PARTITIONS) in partitions)
    assert kept, partitions
    return ",".join(kept)


def data_watermark_end_s(ticks: list[Tick], partition_of: dict[str, int]) -> int:
    """The last window end (s) the data alone closes on every partition holding data:
    the lowest of their highest event times, minus the lateness, floored to 10 s."""
    highest: dict[int, int] = {}
    for tick in ticks:
        p = partition_of[tick.symbol]
        highest[p] = max(highest.get(p, tick.ts_ms), tick.ts_ms)
    return (min(highest.values()) - 5_000) // 10_000 * 10


def partition_sizes(bootstrap: str, topic: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "empty-topic-probe"})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(PARTITIONS)
        ]
    finally:
        consumer.close()


@pytest.mark.parametrize(("processes", "db"), [(1, 13), (2, 14)])
def test_dataflow_started_on_an_empty_topic_ranks_every_window_whole(
    processes: int,
    db: int,
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    redis_url: str,
    tmp_path: Path,
) -> None:
    topic = kafka_topic_factory("ticks", partitions=PARTITIONS)
    dlq = kafka_topic_factory("dlq", partitions=1)
    url = with_db(redis_url, db)
    client = redis.Redis.from_url(url)
    client.flushdb()
    shards = [
        ReplaySettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            ticks_topic=topic,
            replay_file=SSE_FILE,
            replay_from=FROM_LOCAL,
            replay_symbols=shard_symbols(partitions),
            replay_limit=LIMIT,
            replay_speed=0,
            metrics_port=0,
        )
        for partitions in SHARDS
    ]
    ticks = [tick for shard in shards for tick in replay_ticks(shard)]
    partition_of = {t.symbol: partition_for(encode(t)[0], PARTITIONS) for t in ticks}
    recovery = tmp_path / "recovery"
    env = dataflow_env(
        kafka_bootstrap,
        topic,
        dlq,
        url,
        BOUNDED="false",
        RECOVERY_DIR=str(recovery),
        SNAPSHOT_INTERVAL_S="1",
        IDLE_TICK_S="0.2",
        IDLE_TIMEOUT_S=str(IDLE_TIMEOUT_S),
    )
    cluster = LocalCluster(env, processes=processes, log_dir=tmp_path / "dataflow")
    ports = [free_port() for _ in range(processes)]
    cluster.start_with_env([{"METRICS_PORT": str(port)} for port in ports])
    try:
        # Running on the empty topic: snapshots committed, every partition read (and empty).
        wait_until(
            lambda: committed_epoch(recovery) >= 2,
            "the dataflow's first snapshots",
            context=cluster.log_tail,
        )
        assert client.keys("history:*") == [], "nothing to rank yet"
        for index, shard in enumerate(shards):
            if index:
                time.sleep(SECOND_SHARD_DELAY_S)
            result = run_replay(shard)
            assert result.failed == 0 and result.undelivered == 0, result
            assert result.published == LIMIT, result
        sizes = partition_sizes(kafka_bootstrap, topic)
        assert sizes[EMPTY_PARTITION] == 0 and all(sizes[p] for p in range(EMPTY_PARTITION)), sizes
        # Live, the empty partition holds each window back for IDLE_TIMEOUT_S only: the live
        # run ranks the 1m windows up to the data partitions' common watermark.
        last_1m_end_s = data_watermark_end_s(ticks, partition_of)
        wait_until(
            lambda: int(client.hget("window:1m", "end") or 0) >= last_1m_end_s,
            "the live run's 1m windows up to the end of the slice",
            context=cluster.log_tail,
        )
        assert all(proc.poll() is None for proc in cluster.procs), cluster.log_tail()
        metrics = [scrape(port) for port in ports]
        assert all(metrics), "a process's /metrics did not answer"
        assert sum(total(m, "stockstream_windows_closed_total") for m in metrics) > 0, metrics
        for name in (
            "stockstream_windows_corrected_total",
            "stockstream_window_parts_too_late_total",
        ):
            assert sum(total(m, name) for m in metrics) == 0, (name, cluster.log_tail())
        cluster.stop()
        cluster.env = {**cluster.env, "BOUNDED": "true"}  # the last windows, from snapshots
        cluster.start()
        assert cluster.wait(600) == [0] * processes, cluster.log_tail()
    finally:
        cluster.stop()

    accepted, late = split_late(ticks, partition_of.__getitem__, 5_000)
    assert not late, "each partition's slice is in time order: nothing is late"
    assert_history_matches(client, oracle_windows(accepted, DEFAULT_SPECS), DEFAULT_SPECS)
