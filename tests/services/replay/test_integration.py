"""The replay producer against a real Kafka broker: what is published is exactly what
`iter_ticks` reads, keyed by symbol, in per-symbol file order, and nothing is lost on exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from itertools import islice

import pytest
from confluent_kafka import Message
from confluent_kafka.admin import AdminClient
from prometheus_client import REGISTRY

from services.replay import iter_ticks
from services.replay.producer import ReplayResult, run_replay, wall_clock_ms
from services.replay.settings import REPO_ROOT, ReplaySettings
from stockstream.kafka import DeliveryStats, create_producer, ensure_topics, produce
from stockstream.ticks import Tick, decode
from tests.kafka_support import read_topic
from tests.services.replay.samples import SSE_FILE

pytestmark = pytest.mark.integration

TopicFactory = Callable[..., str]


def consume(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0) -> list[Message]:
    """Every message of `topic` from the beginning (see `read_topic`)."""
    return read_topic(bootstrap, topic, expected, timeout_s)


def test_replay_publishes_real_sse_ticks(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    limit = 3000
    topic = kafka_topic_factory("replay-ticks", partitions=4)
    settings = ReplaySettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        ticks_topic=topic,
        replay_file=SSE_FILE,
        replay_limit=limit,
        metrics_port=0,
    )
    started = wall_clock_ms()
    result = run_replay(settings)
    finished = wall_clock_ms()
    assert result == ReplayResult(limit, limit, 0, 0, stopped=False)

    messages = consume(kafka_bootstrap, topic, limit)
    expected = list(islice(iter_ticks(SSE_FILE), limit))
    assert len(messages) == limit

    received: dict[str, list[Tick]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for message in messages:
        tick = decode(message.key(), message.value())
        assert isinstance(tick, Tick), tick
        assert message.key() == tick.symbol.encode()
        assert tick.ingest_ts_ms is not None and started <= tick.ingest_ts_ms <= finished
        received[tick.symbol].append(replace(tick, ingest_ts_ms=None))
        partition = message.partition()
        assert partition is not None
        partitions[tick.symbol].add(partition)

    wanted: dict[str, list[Tick]] = defaultdict(list)
    for tick in expected:
        wanted[tick.symbol].append(tick)
    assert dict(received) == dict(wanted)  # same ticks, same per-symbol (file) order
    assert all(len(p) == 1 for p in partitions.values())
    assert len({p for ps in partitions.values() for p in ps}) > 1


def test_stop_before_start_publishes_nothing(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    stop = threading.Event()
    stop.set()
    topic = kafka_topic_factory("replay-stopped", partitions=1)
    settings = ReplaySettings(
        kafka_bootstrap_servers=kafka_bootstrap, ticks_topic=topic, metrics_port=0
    )
    assert run_replay(settings, stop) == ReplayResult(0, 0, 0, 0, stopped=True)


def test_sigterm_flushes_and_exits_cleanly(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory("replay-sigterm", partitions=3)
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TICKS_TOPIC": topic,
        "REPLAY_SPEED": "60",
        "REPLAY_LOOP": "true",
        "REPLAY_FROM": "09:30",
        "METRICS_PORT": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.replay"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert len(consume(kafka_bootstrap, topic, 50, timeout_s=30)) >= 50
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr

    records = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert all(record["service"]["name"] == "replay" for record in records)
    finished = next(r for r in records if r["message"] == "replay finished")["stockstream"]
    assert finished["stopped"] is True
    assert finished["delivered"] == finished["published"] >= 50
    assert finished["failed"] == finished["undelivered"] == 0
    assert len(consume(kafka_bootstrap, topic, finished["published"])) == finished["published"]


def test_ensure_topics_is_idempotent(kafka_bootstrap: str) -> None:
    name = f"ensure-{uuid.uuid4().hex[:8]}"
    assert ensure_topics(kafka_bootstrap, {name: 3}) == {name: True}
    assert ensure_topics(kafka_bootstrap, {name: 3}) == {name: False}
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert len(metadata.topics[name].partitions) == 3


def delivery_errors() -> float:
    return REGISTRY.get_sample_value("stockstream_producer_delivery_errors_total") or 0.0


def test_delivery_errors_are_counted(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory("replay-small", partitions=1, config={"max.message.bytes": "200"})
    stats = DeliveryStats()
    producer = create_producer(kafka_bootstrap, client_id="test", on_delivery=stats)
    errors_before = delivery_errors()
    produce(producer, topic, b"OK", b"small")
    assert producer.flush(30) == 0
    # the broker refuses a record larger than the topic allows
    produce(producer, topic, b"BIG", os.urandom(2000))
    assert producer.flush(30) == 0
    del producer
    assert (stats.delivered, stats.failed) == (1, 1)
    assert stats.last_error is not None
    assert delivery_errors() == errors_before + 1
