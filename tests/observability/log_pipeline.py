"""A real pipeline run whose processes write container log files (CRI format), for the
log-search test: embedded Kafka and Redis, the replay feed and a two-process dataflow, with bad
ticks (-> "ticks dead-lettered" warnings) and a Redis outage (-> "redis write failed, retrying").

Sequence (each step waits by polling, never by sleeping a fixed time):
 1. bad ticks, then the replay feed from 09:30 (phase 1), into a fresh topic;
 2. the dataflow processes start and write the first leaderboards to Redis;
 3. Redis is stopped, the feed replays from 10:00 (phase 2): new windows close, their writes
    fail and are retried;
 4. Redis is started again on the same port; once a phase-2 window is in Redis, the dataflow
    processes are stopped with SIGTERM.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from confluent_kafka import Producer

from stockstream.embedded.ports import LOOPBACK, free_port
from stockstream.embedded.redis_server import RedisServer
from stockstream.embedded.topics import create_topic
from tests.cri_log_support import ContainerLogs, ContainerProcess
from tests.dataflows.leaders.pipeline import REPO

# (key, value) of the bad ticks and the reason each one is dead-lettered with.
BAD_TICKS: list[tuple[bytes, bytes, str]] = [
    (b"AAA", b"not json", "invalid_json"),
    (
        b"BBB",
        b'{"schema_version":1,"symbol":"BBB","price":-1,'
        b'"ts":"2021-12-01T01:30:00Z","source":"test"}',
        "non_positive_price",
    ),
]
PROCESSES = 2
PHASE_2_FROM = "10:00"
PHASE_2_END_S = 1638324000  # 2021-12-01T10:00:00+08:00: windows ending later are phase 2's


@dataclass
class PipelineRun:
    """What ran: the processes (with their log files) and the names the test searches for."""

    topic: str
    processes: list[ContainerProcess] = field(default_factory=list)

    def log_tails(self) -> str:
        return "\n".join(proc.log_tail() for proc in self.processes)


def _wait(what: str, predicate: Callable[[], bool], run: PipelineRun, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        dead = [p.name for p in run.processes if p.proc.poll() not in (None, 0)]
        if dead or time.monotonic() > deadline:
            raise AssertionError(
                f"waiting for {what}: failed processes {dead} or timed out "
                f"after {timeout_s}s\n{run.log_tails()}"
            )
        time.sleep(0.5)


def _logged(run: PipelineRun, text: str) -> bool:
    return any(text in p.path.read_text(errors="replace") for p in run.processes)


def _window_end_s(url: str) -> int:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return int(client.hget("window:1m", "end") or 0)
    except redis.RedisError:
        return 0
    finally:
        client.close()


def _replay(
    logs: ContainerLogs, run: PipelineRun, env: dict[str, str], from_time: str, limit: int
) -> None:
    replay = logs.spawn(
        "replay",
        "replay",
        [sys.executable, "-m", "services.replay"],
        {
            **env,
            "REPLAY_FROM": from_time,
            "REPLAY_LIMIT": str(limit),
            "REPLAY_SPEED": "0",
        },
        cwd=REPO,
    )
    run.processes.append(replay)
    code = replay.wait(180)
    assert code == 0, replay.log_tail()


def run_pipeline(logs: ContainerLogs, bootstrap: str, redis_server: RedisServer) -> PipelineRun:
    """Run the sequence above; every process's output ends up in `logs`."""
    topic = f"logs-ticks-{uuid.uuid4().hex[:8]}"
    dlq = f"{topic}.dlq"
    create_topic(bootstrap, topic, PROCESSES)
    create_topic(bootstrap, dlq, 1)
    run = PipelineRun(topic)
    base = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "TICKS_TOPIC": topic,
        "DLQ_TOPIC": dlq,
        "METRICS_PORT": "0",
        "LOG_LEVEL": "INFO",
    }

    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value, _ in BAD_TICKS:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0
    _replay(logs, run, base, "09:30", 1500)

    addresses = ";".join(f"{LOOPBACK}:{free_port()}" for _ in range(PROCESSES))
    flow_env = {
        **base,
        "REDIS_URL": redis_server.url,
        "REDIS_RETRY_MAX_S": "1",
        "ADDRESSES": addresses,
        "START_FROM": "beginning",
    }
    for index in range(PROCESSES):
        run.processes.append(
            logs.spawn(
                f"dataflow-{index}",
                "dataflow",
                [sys.executable, "-m", "dataflows.leaders"],
                {**flow_env, "PROCESS_ID": str(index)},
                cwd=REPO,
            )
        )
    _wait("the first leaderboard in Redis", lambda: _window_end_s(redis_server.url) > 0, run, 240)
    _wait("the dead-letter warnings", lambda: _logged(run, "ticks dead-lettered"), run, 120)

    redis_server.stop()
    _replay(logs, run, base, PHASE_2_FROM, 600)
    _wait("a Redis retry", lambda: _logged(run, "redis write failed, retrying"), run, 120)
    redis_server.start()
    _wait(
        "a phase-2 window in Redis",
        lambda: _window_end_s(redis_server.url) > PHASE_2_END_S,
        run,
        120,
    )
    for proc in run.processes:
        proc.stop()
    return run
