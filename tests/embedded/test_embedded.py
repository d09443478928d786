"""The embedded servers really start, serve data, and stop (PID gone)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from confluent_kafka import KafkaError, Message, Producer
from redis.backoff import NoBackoff
from redis.retry import Retry

from stockstream.embedded import ServerStartError, pid_alive
from stockstream.embedded.kafka_broker import KafkaBroker, KafkaLibsMissingError
from stockstream.embedded.ports import free_port
from stockstream.embedded.redis_server import RedisServer
from stockstream.embedded.topics import create_topic
from tests.kafka_support import read_topic

pytestmark = pytest.mark.integration


# -- helpers -------------------------------------------------------------------------


def produce(bootstrap: str, topic: str, records: list[tuple[str, str]]) -> None:
    """Produce (key, value) records and wait until all are acknowledged."""
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for key, value in records:
        producer.produce(topic, key=key.encode(), value=value.encode(), on_delivery=on_delivery)
    assert producer.flush(30) == 0, "producer did not deliver everything within 30s"
    assert not errors, errors


def consume(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Message]:
    """Exactly ``count`` messages from the beginning of ``topic``."""
    out = read_topic(bootstrap, topic, count, timeout, settle_s=0.0)
    assert len(out) == count, f"got {len(out)} of {count} messages from {topic}"
    return out


def key_value(msg: Message) -> tuple[str, str]:
    key, value = msg.key(), msg.value()
    assert isinstance(key, bytes) and isinstance(value, bytes)
    return key.decode(), value.decode()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- ports ---------------------------------------------------------------------------


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# -- redis ---------------------------------------------------------------------------


def test_redis_server_start_put_get_stop() -> None:
    server = RedisServer(password="s3cr:t/")
    with server:
        pid = server.pid
        assert pid is not None and pid_alive(pid)
        assert server.url == f"redis://:s3cr%3At%2F@127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        client.zadd("leaders", {"AAPL": 3.5, "MSFT": 1.25})
        assert client.zrange("leaders", 0, -1, desc=True, withscores=True) == [
            (b"AAPL", 3.5),
            (b"MSFT", 1.25),
        ]
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port, retry=Retry(NoBackoff(), 0)).set(
                "k", "v"
            )
        workdir = server.workdir
        client.close()
    assert not pid_alive(pid)
    assert not server.is_running and server.pid is None
    assert not port_open(server.port)
    assert not workdir.exists()


def test_redis_server_restart_same_port() -> None:
    with RedisServer() as server:
        first_pid = server.pid
        server.stop()
        assert first_pid is not None and not pid_alive(first_pid)
        server.start()
        assert server.pid != first_pid
        assert server.client().ping()


def test_redis_server_start_failure_reports_log() -> None:
    with RedisServer() as first:
        clash = RedisServer(port=first.port)
        try:
            with pytest.raises(ServerStartError, match=r"(?s)redis-server.*exited.*in use"):
                clash.start()
            assert not clash.is_running
        finally:
            clash.close()
        assert first.client().ping()


def test_redis_client_fixture_writes(redis_client: redis.Redis) -> None:
    redis_client.set("left-over", "1")
    assert redis_client.dbsize() == 1


def test_redis_client_fixture_is_flushed(redis_client: redis.Redis) -> None:
    assert redis_client.dbsize() == 0


# -- kafka ---------------------------------------------------------------------------


def test_kafka_session_broker_running(kafka_broker: object, kafka_bootstrap: str) -> None:
    assert kafka_bootstrap.count(":") == 1
    if isinstance(kafka_broker, KafkaBroker):
        assert kafka_broker.pid is not None and pid_alive(kafka_broker.pid)
        assert kafka_bootstrap == f"127.0.0.1:{kafka_broker.port}"


def test_kafka_produce_consume_three_partitions(kafka_bootstrap: str) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_bootstrap, topic, 3)
    records = [(f"SYM{i % 7}", f"price-{i}") for i in range(60)]
    produce(kafka_bootstrap, topic, records)

    msgs = consume(kafka_bootstrap, topic, len(records))
    assert sorted(key_value(m) for m in msgs) == sorted(records)
    assert {m.partition() for m in msgs} == {0, 1, 2}
    # per key, order is preserved (same key -> same partition)
    by_key: dict[str, list[str]] = {}
    for key, value in map(key_value, msgs):
        by_key.setdefault(key, []).append(value)
    for key, values in by_key.items():
        assert values == [v for k, v in records if k == key]


def test_create_topic_is_idempotent(kafka_bootstrap: str) -> None:
    topic = f"idem-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_bootstrap, topic, 3, {"retention.ms": "3600000"})
    create_topic(kafka_bootstrap, topic, 3)
    with pytest.raises(ValueError, match=r"already exists.*3 partitions, wanted 5"):
        create_topic(kafka_bootstrap, topic, 5)


def test_kafka_topic_factory(kafka_topic_factory: Callable[..., str], kafka_bootstrap: str) -> None:
    topic = kafka_topic_factory("ticks", partitions=2)
    produce(kafka_bootstrap, topic, [("k", "v")])
    assert consume(kafka_bootstrap, topic, 1)[0].value() == b"v"


def test_kafka_broker_stop_start_keeps_data(private_kafka_broker: KafkaBroker) -> None:
    broker = private_kafka_broker
    bootstrap = broker.bootstrap
    topic = "restart-topic"
    create_topic(bootstrap, topic, 3)
    before = [(f"K{i % 5}", f"before-{i}") for i in range(30)]
    produce(bootstrap, topic, before)

    pid = broker.pid
    assert pid is not None
    broker.stop()
    assert not pid_alive(pid)
    assert not broker.is_running
    assert not port_open(broker.port)

    broker.start()
    assert broker.bootstrap == bootstrap
    assert broker.pid != pid and broker.is_running
    after = [(f"K{i % 5}", f"after-{i}") for i in range(15)]
    produce(bootstrap, topic, after)
    msgs = consume(bootstrap, topic, len(before) + len(after))
    assert sorted(key_value(m) for m in msgs) == sorted(before + after)

    pid2 = broker.pid
    assert pid2 is not None
    broker.restart()
    assert not pid_alive(pid2)
    msgs = consume(bootstrap, topic, len(before) + len(after))
    assert len(msgs) == 45


def test_kafka_broker_context_manager_cleans_up() -> None:
    with KafkaBroker() as broker:
        pid = broker.pid
        workdir = broker.workdir
        assert pid is not None and pid_alive(pid)
        assert (broker.data_dir / "meta.properties").is_file()
    assert not pid_alive(pid)
    assert not workdir.exists()


def test_kafka_missing_libs_error_mentions_bootstrap(tmp_path: Path) -> None:
    broker = KafkaBroker(libs_dir=tmp_path / "nowhere")
    with pytest.raises(KafkaLibsMissingError, match=r"scripts/bootstrap\.sh"):
        broker.start()
    broker.close()


def test_kafka_broker_port_clash_is_reported() -> None:
    with KafkaBroker() as first:
        clash = KafkaBroker(port=first.port, startup_timeout=60)
        try:
            with pytest.raises(ServerStartError, match=r"(?s)Kafka broker on .* exited"):
                clash.start()
            assert not clash.is_running
        finally:
            clash.close()
