"""A resumed replay sends exactly the ticks the topic lacks: the partition it computes is
librdkafka's own choice, and a second run after a cut-short first one completes the topic
without a duplicate (SIGKILL mid-run: tests/faults/)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from itertools import islice

import pytest
from confluent_kafka import Producer
from prometheus_client import REGISTRY

from services.replay import iter_ticks
from services.replay.producer import run_replay
from services.replay.resume import SEQ_HEADER, partition_for, read_resume_point
from services.replay.settings import ReplaySettings
from stockstream.ticks import Tick, decode
from tests.kafka_support import read_topic
from tests.services.replay.samples import SSE_FILE

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_partition_for_is_librdkafkas_default_choice(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str], partitions: int
) -> None:
    topic = kafka_topic_factory("partitioner", partitions=partitions)
    keys = [f"SYM{i}".encode() for i in range(200)] + [b"600519", b"AIG", b"BRK.B"]
    chosen: dict[bytes, int] = {}

    def delivered(err: object, msg: object) -> None:
        assert err is None, err
        chosen[msg.key()] = msg.partition()  # type: ignore[attr-defined]

    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for key in keys:
        producer.produce(topic, key=key, value=b"x", on_delivery=delivered)
    assert producer.flush(60) == 0
    assert chosen == {key: partition_for(key, partitions) for key in keys}


def skipped() -> float:
    return REGISTRY.get_sample_value("stockstream_replay_ticks_skipped_total") or 0.0


def test_resumed_replay_completes_the_topic_without_duplicates(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str]
) -> None:
    topic = kafka_topic_factory("resume", partitions=3)

    def replay(limit: int) -> int:
        settings = ReplaySettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            ticks_topic=topic,
            replay_file=SSE_FILE,
            replay_limit=limit,
            replay_resume=True,
            metrics_port=0,
        )
        result = run_replay(settings)
        assert result.ok, result
        return result.published

    assert read_resume_point(kafka_bootstrap, topic, {}).last_seq == (-1, -1, -1)
    assert replay(1000) == 1000  # cut short: the first 1000 ticks
    before = skipped()
    assert replay(3000) == 2000  # resumed: only the 2000 the topic lacks
    assert skipped() - before == 1000
    assert replay(3000) == 0  # nothing left to send

    messages = read_topic(kafka_bootstrap, topic, 3000)
    seqs: Counter[int] = Counter()
    got: list[tuple[int, Tick]] = []
    for message in messages:
        headers = message.headers() or []
        assert isinstance(headers, list)  # a consumed message's: [(name, value), ...]
        [seq] = [int(v) for k, v in headers if k == SEQ_HEADER and isinstance(v, bytes)]
        seqs[seq] += 1
        tick = decode(message.key(), message.value())
        assert isinstance(tick, Tick)
        assert message.partition() == partition_for(tick.symbol.encode(), 3)
        got.append((seq, Tick(tick.symbol, tick.price, tick.ts_ms, tick.size, tick.source)))
    assert sorted(seqs) == list(range(3000)) and set(seqs.values()) == {1}
    assert sorted(got) == list(enumerate(islice(iter_ticks(SSE_FILE), 3000)))
