"""Session-wide fixtures starting real servers (redis-server, Kafka KRaft broker).

Environment overrides (use an already running server instead of starting one):
  REDIS_URL                e.g. redis://127.0.0.1:6379/15  (NB: redis_client FLUSHDBs it!)
  KAFKA_BOOTSTRAP_SERVERS  e.g. 127.0.0.1:9092 (a local Kafka or Redpanda)
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from stockstream.embedded.kafka_broker import KafkaBroker
from stockstream.embedded.redis_server import RedisServer
from stockstream.embedded.topics import create_topic
from tests.cluster_support import kube_cluster  # noqa: F401 - the session cluster fixture

# Property tests assert correctness, not speed: on a loaded machine one example can take far
# longer than Hypothesis' default 200 ms deadline (seen: 302 ms), which fails a correct test.
hypothesis_settings.register_profile(
    "loaded-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("loaded-machine")


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


def pytest_configure(config: pytest.Config) -> None:
    """A run ended by SIGTERM (CI's time limit, `kill`) unwinds like Ctrl-C: pytest tears down
    every fixture, which stops by PID the servers and processes the tests started (they run
    in sessions of their own, out of reach of a signal to pytest's process group). Python's
    default for SIGTERM exits at once and left them running (seen: two dataflow processes
    and a Kafka broker of a killed run, 40 minutes later)."""
    signal.signal(signal.SIGTERM, _interrupt)


@dataclass(frozen=True)
class ExternalRedis:
    """A Redis given by ``$REDIS_URL`` (not started/stopped by the tests)."""

    url: str


@dataclass(frozen=True)
class ExternalKafka:
    """A Kafka given by ``$KAFKA_BOOTSTRAP_SERVERS`` (not started/stopped by the tests)."""

    bootstrap: str


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | ExternalRedis]:
    """A running ``RedisServer`` for the whole session (or ``ExternalRedis`` if $REDIS_URL)."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield ExternalRedis(url)
        return
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer | ExternalRedis) -> str:
    """URL of the session Redis."""
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A ``redis.Redis`` on the session server, with ``flushdb()`` done before the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker | ExternalKafka]:
    """A running single-node ``KafkaBroker`` for the whole session (or ``ExternalKafka``
    if $KAFKA_BOOTSTRAP_SERVERS). Do not stop it; use ``private_kafka_broker`` for that."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if bootstrap:
        yield ExternalKafka(bootstrap)
        return
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker | ExternalKafka) -> str:
    """``bootstrap.servers`` of the session Kafka."""
    return kafka_broker.bootstrap


@pytest.fixture
def private_kafka_broker() -> Iterator[KafkaBroker]:
    """A fresh embedded ``KafkaBroker`` for one test, always started here (ignores
    $KAFKA_BOOTSTRAP_SERVERS), so the test may ``stop()``/``start()``/``restart()`` it."""
    with KafkaBroker() as broker:
        yield broker


@pytest.fixture
def kafka_topic_factory(kafka_bootstrap: str) -> Callable[..., str]:
    """``make(prefix="t", partitions=3, config=None) -> name``: creates a uniquely named
    topic on the session Kafka and waits until it is usable."""

    def make(
        prefix: str = "t", partitions: int = 3, config: Mapping[str, str] | None = None
    ) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        create_topic(kafka_bootstrap, name, partitions, config)
        return name

    return make


# Where a run's time goes, by tier (issue 24): every test's setup, call and teardown added up
# per directory under tests/ (a session fixture's setup, such as the cluster's, counts for the
# first test that needs it), printed at the end of every run, longest first.
_SECONDS_BY_TIER: dict[str, float] = {}


def _tier(nodeid: str) -> str:
    parts = nodeid.split("::", 1)[0].split("/")
    return "/".join(parts[:3]) if parts[1:2] == ["dataflows"] else "/".join(parts[:2])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier = _tier(report.nodeid)
    _SECONDS_BY_TIER[tier] = _SECONDS_BY_TIER.get(tier, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _SECONDS_BY_TIER:
        return
    total = sum(_SECONDS_BY_TIER.values())
    terminalreporter.section("time by tier (setup + call + teardown)")
    for tier, seconds in sorted(_SECONDS_BY_TIER.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s {100 * seconds / total:5.1f} %  {tier}")
