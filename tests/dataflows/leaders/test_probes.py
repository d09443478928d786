"""/readyz and /healthz of a real dataflow process (one `python -m dataflows.leaders` on the
embedded Kafka and Redis): ready once it polls its partitions with the broker reachable, 503
with the reason while its broker is stopped, ready again once the broker is back, and again
after a restart that resumes from the snapshot; /healthz stays 200 throughout, the loop
beating while it waits.

A stalled loop (/healthz 503) is decided by `liveness` (tests/dataflows/leaders/
test_health.py): a process blocked for real (SIGSTOP) cannot answer its own probe, and the
waits that block the loop in production (Redis, the dead-letter producer) beat on purpose."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from dataflows.leaders.cluster import LocalCluster
from stockstream.embedded.kafka_broker import KafkaBroker
from stockstream.embedded.ports import LOOPBACK, free_port
from stockstream.embedded.topics import create_topic
from tests.dataflows.leaders.pipeline import dataflow_env, with_db

pytestmark = pytest.mark.integration

Answer = tuple[int, str]  # status (0: no answer), body


def probe(port: int, path: str) -> Answer:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode().strip()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode().strip()
    except OSError:
        return 0, ""  # not listening yet


def wait_for(
    port: int,
    path: str,
    wanted: Callable[[Answer], bool],
    timeout_s: float,
    cluster: LocalCluster,
) -> list[Answer]:
    """Every distinct answer of `path` until one is `wanted` (fails after `timeout_s`)."""
    seen: list[Answer] = []
    deadline = time.monotonic() + timeout_s
    while True:
        answer = probe(port, path)
        if not seen or seen[-1] != answer:
            seen.append(answer)
        if wanted(answer):
            return seen
        assert cluster.procs[0].poll() is None, f"dataflow exited\n{cluster.log_tail()}"
        assert time.monotonic() < deadline, f"{path}: {seen}\n{cluster.log_tail()}"
        time.sleep(0.25)


def test_readiness_follows_the_broker_and_liveness_stays_up(
    private_kafka_broker: KafkaBroker, redis_url: str, tmp_path: Path
) -> None:
    broker = private_kafka_broker
    topic = f"ticks-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, topic, 2)
    port = free_port()
    env = dataflow_env(
        broker.bootstrap,
        topic,
        f"{topic}.dlq",
        with_db(redis_url, 9),
        BOUNDED="false",
        RECOVERY_DIR=str(tmp_path / "recovery"),
        READINESS_BROKER_DOWN_S="2",
        LIVENESS_STALL_S="60",
        LOG_LEVEL="INFO",
    )
    cluster = LocalCluster(env, processes=1, log_dir=tmp_path / "logs")
    cluster.start_with_env([{"METRICS_PORT": str(port)}])
    try:
        before = wait_for(port, "/readyz", lambda a: a[0] == 200, 120, cluster)
        assert before[-1] == (200, "ready")
        not_ready = [body for status, body in before if status == 503]
        assert all(
            body.startswith(("starting", "partitions restored", "broker not reached"))
            for body in not_ready
        ), before
        assert probe(port, "/healthz") == (200, "ok")
        assert "stockstream_dataflow_ready 1.0" in probe(port, "/metrics")[1]

        broker.stop()
        lost = wait_for(port, "/readyz", lambda a: a[0] == 503, 120, cluster)
        assert lost[-1][1].startswith("broker unreachable since "), lost
        assert probe(port, "/healthz") == (200, "ok")  # the loop goes on: nothing to restart
        metrics = probe(port, "/metrics")[1]
        assert "stockstream_dataflow_ready 0.0" in metrics

        broker.start()
        back = wait_for(port, "/readyz", lambda a: a[0] == 200, 180, cluster)
        assert back[-1] == (200, "ready")
        assert probe(port, "/healthz") == (200, "ok")

        cluster.stop()  # a restart resumes both partitions from the snapshot, then is ready
        cluster.start_with_env([{"METRICS_PORT": str(port)}])
        again = wait_for(port, "/readyz", lambda a: a[0] == 200, 120, cluster)
        assert again[-1] == (200, "ready")
        assert "stockstream_partitions_resumed_total 2.0" in probe(port, "/metrics")[1]
    finally:
        cluster.stop()
