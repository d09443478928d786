"""A mix of valid ticks and every kind of bad message: each bad one lands in the dead-letter
topic with its original bytes and reason, counted in metrics; every valid one is counted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
import redis
from bytewax.testing import run_main
from confluent_kafka import Message, Producer
from prometheus_client import REGISTRY

from dataflows.leaders.flow import build_flow
from dataflows.leaders.settings import DataflowSettings
from stockstream.ticks import Tick, encode
from tests.dataflows.leaders.pipeline import with_db
from tests.kafka_support import read_topic

pytestmark = pytest.mark.integration

T0 = 1_638_322_200_000  # 2021-12-01T01:30:00Z
GOOD = b'{"schema_version":1,"symbol":"%s","price":%s,"ts":"%s","source":"test"}'

BAD_MESSAGES: list[tuple[str, bytes | None, bytes | None]] = [
    ("invalid_json", b"AAA", b'{"schema_version":1,'),
    ("invalid_json", b"AAA", b"\x00\xff not json"),
    ("not_an_object", b"AAA", b"[1, 2, 3]"),
    ("missing_field", b"AAA", b'{"schema_version":1,"symbol":"AAA","price":1.0,"source":"t"}'),
    (
        "unknown_schema_version",
        b"AAA",
        b'{"schema_version":9,"symbol":"AAA","price":1.0,"ts":"2021-12-01T01:30:00Z","source":"t"}',
    ),
    ("non_finite_price", b"AAA", GOOD % (b"AAA", b"NaN", b"2021-12-01T01:30:01Z")),
    ("non_finite_price", b"AAA", GOOD % (b"AAA", b"Infinity", b"2021-12-01T01:30:01Z")),
    ("non_positive_price", b"AAA", GOOD % (b"AAA", b"0", b"2021-12-01T01:30:01Z")),
    ("non_positive_price", b"AAA", GOOD % (b"AAA", b"-3.5", b"2021-12-01T01:30:01Z")),
    ("bad_timestamp", b"AAA", GOOD % (b"AAA", b"1.5", b"yesterday")),
    ("bad_key", b"\xff\xfe", GOOD % (b"AAA", b"1.5", b"2021-12-01T01:30:01Z")),
    ("key_mismatch", b"BBB", GOOD % (b"AAA", b"1.5", b"2021-12-01T01:30:01Z")),
    ("oversize", b"AAA", b"{" + b" " * 10_000 + b"}"),
    ("invalid_json", b"AAA", None),
]


def valid_ticks() -> list[Tick]:
    return [
        Tick(symbol, 10.0 + i % 7, T0 + i * 700, 100.0, "test")
        for i, symbol in enumerate(["AAA", "BBB", "CCC", "DDD"] * 50)
    ]


def test_bad_messages_go_to_the_dead_letter_topic(
    kafka_bootstrap: str, kafka_topic_factory: Callable[..., str], redis_url: str
) -> None:
    topic = kafka_topic_factory("ticks", partitions=1)
    dlq = kafka_topic_factory("dlq", partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    good = valid_ticks()
    # One late tick: 60 s older than everything before it in the same partition.
    late_key, late_value = encode(Tick("AAA", 50.0, T0 + 100 * 700 - 60_000, None, "test"))
    sent_bad = []
    for i, tick in enumerate(good):
        key, value = encode(tick)
        producer.produce(topic, key=key, value=value)
        if i == 100:
            producer.produce(topic, key=late_key, value=late_value)
        if i % 14 == 0 and i // 14 < len(BAD_MESSAGES):
            reason, bad_key, bad_value = BAD_MESSAGES[i // 14]
            producer.produce(topic, key=bad_key, value=bad_value)
            sent_bad.append((reason, bad_key, bad_value))
    assert producer.flush(30) == 0
    assert len(sent_bad) == len(BAD_MESSAGES)

    before = {reason: _rejected(reason) for reason, _, _ in [*BAD_MESSAGES, ("late", 0, 0)]}
    url = with_db(redis_url, 3)
    redis.Redis.from_url(url).flushdb()
    settings = DataflowSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        ticks_topic=topic,
        dlq_topic=dlq,
        redis_url=url,
        bounded=True,
        metrics_port=0,
    )
    run_main(build_flow(settings))

    letters = _consume_all(kafka_bootstrap, dlq, expected=len(sent_bad) + 1)
    got = Counter((h["reason"], k, v) for k, v, h in letters)
    want = Counter([*sent_bad, ("late", late_key, late_value)])
    assert got == want
    for _, _, headers in letters:
        assert headers["reason_detail"] and headers["source_topic"] == topic
        assert headers["source_offset"].isdigit()
    reasons = Counter(reason for reason, _, _ in sent_bad) + Counter(["late"])
    for reason, count in reasons.items():
        assert _rejected(reason) - before[reason] == count, reason

    client = redis.Redis.from_url(url)
    counted = sum(
        int(client.hget(f"figures:{s}", "5m_max.count") or 0) for s in ("AAA", "BBB", "CCC", "DDD")
    )
    # All valid ticks (0..139 s) fall in one 5-minute tumbling window: each counted once.
    assert counted == len(good)


def _rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("stockstream_ticks_rejected_total", {"reason": reason}) or 0.0


def _headers(msg: Message) -> dict[str, str]:
    headers: dict[str, str] = {}
    received = msg.headers() or []
    assert isinstance(received, list), received  # a consumed message's: [(key, value), ...]
    for key, value in received:
        assert isinstance(value, bytes), (key, value)
        headers[key] = value.decode()
    return headers


def _consume_all(
    bootstrap: str, topic: str, expected: int
) -> list[tuple[bytes | None, bytes | None, dict[str, str]]]:
    """(key, value, headers) of every dead letter."""
    return [
        (msg.key(), msg.value(), _headers(msg))
        for msg in read_topic(bootstrap, topic, expected, timeout_s=60.0)
    ]
