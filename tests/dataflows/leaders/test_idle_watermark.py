"""Unbounded input that goes quiet: system time moves the watermark, so the last windows close."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from confluent_kafka import Producer

from dataflows.leaders.cluster import LocalCluster
from stockstream.ticks import Tick, encode
from tests.dataflows.leaders.pipeline import dataflow_env, with_db

pytestmark = pytest.mark.integration

T0 = 1_638_322_200_000  # 2021-12-01T01:30:00Z, a multiple of 10 s


def test_quiet_input_still_closes_its_windows(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str], redis_url: str, tmp_path: Path
) -> None:
    topic = kafka_topic_factory("ticks", partitions=2)
    dlq = kafka_topic_factory("dlq", partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(40):  # 0 .. 39 s of event time, then nothing more
        key, value = encode(Tick("AAA" if i % 2 else "BBB", 10.0 + i, T0 + i * 1000, 1.0))
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    url = with_db(redis_url, 8)
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = dataflow_env(
        kafka_bootstrap,
        topic,
        dlq,
        url,
        BOUNDED="false",
        IDLE_TICK_S="0.2",
        WINDOW_LENGTHS_S="[10]",
        MAX_PRICE_WINDOW_S="10",
    )
    last_end_s = (T0 + 40_000) // 1000  # the window [30 s, 40 s) holds the last tick
    with LocalCluster(env, processes=1, log_dir=tmp_path) as cluster:
        # Data alone moves the watermark to 39 s - 5 s: windows up to 30 s close at once.
        # (On a loaded machine the idle advance may already have closed the last window by
        # the time this loop looks: hence >=, and no wall-time comparison below.)
        deadline = time.monotonic() + 120
        while int(client.hget("window:10s", "end") or 0) < last_end_s - 10:
            assert time.monotonic() < deadline, cluster.log_tail()
            time.sleep(0.1)
        # Only system time can close [30 s, 40 s): data moved the watermark to 34 s only, and
        # the input is unbounded, so no end of input closes it either.
        while client.hget("window:10s", "end") != str(last_end_s).encode():
            assert time.monotonic() < deadline, cluster.log_tail()
            assert cluster.procs[0].poll() is None, cluster.log_tail()
            time.sleep(0.1)
    assert client.zrevrange("leaders:10s", 0, -1, withscores=True) == [
        (b"AAA", 45.0),
        (b"BBB", 44.0),
    ]
