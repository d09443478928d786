"""Faults in the middle of a paced, unbounded live run (tests/faults_support.py): the broker
stopped 20 s, Redis stopped 30 s (same data directory: AOF), one dataflow process SIGKILLed
and the cluster restarted from its snapshots, the replay producer SIGKILLed and restarted
(it resumes after each partition's last `replay_seq`), each alone and then all at once.
After each: the topic holds every tick once, every window in Redis history up to the end of
the feed equals the oracle over those ticks with no window end skipped, nothing went to the
dead-letter topic, and the fault shows in a metric."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockstream.embedded.kafka_broker import KafkaBroker
from stockstream.embedded.redis_server import RedisServer
from stockstream.embedded.topics import create_topic
from tests.dataflows.leaders.pipeline import with_db
from tests.faults_support import LiveRun, live_run, scrape, total, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]  # ~2 min each, loaded: more

MID_FEED = 100  # at least this many ticks are in the topic when a fault is injected
BROKER_DOWN_S = 20
REDIS_DOWN_S = 30


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    """A broker of this module's own: the tests stop and restart it (same data directory)."""
    with KafkaBroker() as server:
        yield server


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of this module's own with AOF: the tests stop and restart it on its data."""
    with RedisServer(workdir=tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def run(broker: KafkaBroker, redis_server: RedisServer, tmp_path: Path) -> Iterator[LiveRun]:
    name = uuid.uuid4().hex[:8]
    topic, dlq = f"ticks-{name}", f"dlq-{name}"
    create_topic(broker.bootstrap, topic, 3)
    create_topic(broker.bootstrap, dlq, 1)
    yield from live_run(broker.bootstrap, with_db(redis_server.url, 1), topic, dlq, tmp_path)


def test_broker_stopped_20s(run: LiveRun, broker: KafkaBroker) -> None:
    run.wait_published(MID_FEED)
    broker.stop()
    time.sleep(BROKER_DOWN_S)
    broker.start()
    run.finish()
    run.assert_nothing_lost()
    assert run.dataflow_metric("stockstream_kafka_consumer_errors_total") > 0


def test_redis_stopped_30s(run: LiveRun, redis_server: RedisServer) -> None:
    run.wait_published(MID_FEED)
    redis_server.stop()
    time.sleep(REDIS_DOWN_S)
    redis_server.start()  # same port and data directory: the AOF brings the history back
    run.finish()
    run.assert_nothing_lost()  # includes every window written before the stop
    assert run.dataflow_metric("stockstream_redis_errors_total") > 0


def test_dataflow_process_sigkilled(run: LiveRun) -> None:
    run.wait_published(MID_FEED)
    run.kill_dataflow_process(1)
    run.start_dataflow()  # the cluster resumes from its last snapshot
    run.finish()
    run.assert_nothing_lost()
    assert run.dataflow_metric("stockstream_partitions_resumed_total") > 0


def test_replay_producer_sigkilled(run: LiveRun) -> None:
    run.wait_published(MID_FEED)
    run.kill_replay()
    run.start_replay()  # resumes after each partition's last replay_seq
    wait_until(
        lambda: (
            total(scrape(run.replay_port), "stockstream_replay_ticks_skipped_total") >= MID_FEED
        ),
        "the resumed replay to skip what the topic holds",
        context=run.logs,
    )
    run.finish()
    run.assert_nothing_lost()  # the topic holds each tick exactly once


def test_all_faults_at_once(run: LiveRun, broker: KafkaBroker, redis_server: RedisServer) -> None:
    run.wait_published(MID_FEED)
    run.kill_replay()
    run.kill_dataflow_process(0)
    broker.stop()
    redis_server.stop()
    time.sleep(BROKER_DOWN_S)
    broker.start()
    run.start_dataflow()
    run.start_replay()
    wait_until(
        lambda: (
            total(scrape(run.replay_port), "stockstream_replay_ticks_skipped_total") >= MID_FEED
        ),
        "the resumed replay to skip what the topic holds",
        context=run.logs,
    )
    time.sleep(REDIS_DOWN_S - BROKER_DOWN_S)
    redis_server.start()
    run.finish()
    run.assert_nothing_lost()
    assert run.dataflow_metric("stockstream_partitions_resumed_total") > 0
    assert run.dataflow_metric("stockstream_redis_errors_total") > 0
