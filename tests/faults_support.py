"""A paced, unbounded live run for the fault tests: a real broker and Redis (restartable on
their data directories), the replay producer as a process, the dataflow as a 2-process
cluster in tail mode with recovery, and the checks that nothing was lost.

The feed: the 30 Shanghai stocks from 09:42 to 09:45 (UTC+8), ~1700 real ticks, paced at
`SPEED` (5x: ~36 s of wall time, so that a fault lands mid-feed once the dataflow has started
on a loaded machine). `IDLE_TIMEOUT_S` (120 s) is longer than every outage the tests cause
(the broker down 20 s plus its restart and the consumers' reconnect on a loaded machine, a
producer restart), so the idle watermark advance never runs ahead of ticks an outage delayed.
Once the feed is done, the live cluster is stopped and run again bounded from its snapshots:
the end of the input closes the last windows at once instead of after the idle timeout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from prometheus_client.parser import text_string_to_metric_families

from dataflows.leaders.cluster import LocalCluster
from dataflows.leaders.specs import DEFAULT_SPECS
from services.replay.reader import iter_ticks
from services.replay.resume import SEQ_HEADER
from services.replay.settings import REPO_ROOT
from stockstream.embedded.ports import free_port
from stockstream.ticks import Tick, decode
from tests.dataflows.leaders.oracle import oracle_windows, split_late
from tests.dataflows.leaders.pipeline import SSE_FILE, assert_history_matches, dataflow_env
from tests.dataflows.leaders.test_recovery import committed_epoch
from tests.kafka_support import read_topic

FROM_LOCAL = "09:42"
UNTIL_MS = 1_638_323_100_000  # 2021-12-01T01:45:00Z = 09:45 in Shanghai (a 5-minute boundary)
SPEED = 5
IDLE_TIMEOUT_S = 120
DEADLINE_S = 420.0


def feed_ticks() -> list[Tick]:
    """The slice the replay publishes, in file order."""
    return [t for t in iter_ticks(SSE_FILE, from_time=FROM_LOCAL) if t.ts_ms < UNTIL_MS]


def wait_until(
    condition: Callable[[], bool],
    what: str,
    timeout_s: float = DEADLINE_S,
    context: Callable[[], str] = lambda: "",
) -> None:
    """Poll `condition` (generous deadline: the machine is loaded); fail with `context()`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{context()}"
        time.sleep(0.2)


def scrape(port: int) -> dict[str, float]:
    """`/metrics` of a process: sample name (with labels) -> value; {} when it is down."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def total(samples: dict[str, float], name: str) -> float:
    """Sum of every sample of metric `name` (all label sets)."""
    return sum(v for k, v in samples.items() if k == name or k.startswith(name + "{"))


@dataclass
class LiveRun:
    """One live run on a shared broker and Redis (topics and Redis database of its own)."""

    bootstrap: str
    redis_url: str
    topic: str
    dlq: str
    work: Path
    limit: int
    dataflow_ports: list[int] = field(default_factory=lambda: [free_port(), free_port()])
    replay_port: int = field(default_factory=free_port)
    replay: subprocess.Popen[bytes] | None = None
    replay_starts: int = 0
    cluster: LocalCluster | None = None
    live_metrics: dict[int, dict[str, float]] = field(default_factory=dict)

    # -- processes -----------------------------------------------------------------------

    def start_replay(self) -> None:
        """Start (or restart: it resumes) the paced replay producer."""
        self.replay_starts += 1
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "TICKS_TOPIC": self.topic,
            "REPLAY_FILE": str(SSE_FILE),
            "REPLAY_FROM": FROM_LOCAL,
            "REPLAY_LIMIT": str(self.limit),
            "REPLAY_SPEED": str(SPEED),
            "REPLAY_RESUME": "true",
            "REPLAY_FLUSH_TIMEOUT_S": "120",
            "METRICS_PORT": str(self.replay_port),
            "LOG_LEVEL": "INFO",
        }
        log = open(self.work / f"replay-{self.replay_starts}.log", "ab")  # noqa: SIM115
        self.replay = subprocess.Popen(
            [sys.executable, "-m", "services.replay"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )

    def start_dataflow(self) -> None:
        """Start the 2-process cluster (a restart resumes from the recovery snapshots)."""
        if self.cluster is None:
            env = dataflow_env(
                self.bootstrap,
                self.topic,
                self.dlq,
                self.redis_url,
                BOUNDED="false",
                RECOVERY_DIR=str(self.work / "recovery"),
                SNAPSHOT_INTERVAL_S="1",
                IDLE_TICK_S="0.5",
                IDLE_TIMEOUT_S=str(IDLE_TIMEOUT_S),
                LOG_LEVEL="INFO",
            )
            self.cluster = LocalCluster(env, processes=2, log_dir=self.work / "dataflow")
        self.cluster.start_with_env([{"METRICS_PORT": str(p)} for p in self.dataflow_ports])

    def kill_dataflow_process(self, index: int) -> None:
        """SIGKILL one process once snapshots are committed; its peer cannot go on without
        it, so it is stopped too."""
        assert self.cluster is not None
        wait_until(
            lambda: committed_epoch(self.work / "recovery") >= 3,
            "committed recovery snapshots",
            context=self.logs,
        )
        self.cluster.kill(index)
        self.cluster.procs[index].wait(30)
        self.cluster.stop()

    def kill_replay(self) -> None:
        assert self.replay is not None
        assert self.replay.poll() is None, "the feed ended before the fault: too slow a start"
        self.replay.kill()
        self.replay.wait(30)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        if self.replay is not None and self.replay.poll() is None:
            self.replay.kill()
            self.replay.wait(30)

    def logs(self) -> str:
        parts = [self.cluster.log_tail(30) if self.cluster else ""]
        for path in sorted(self.work.glob("replay-*.log")):
            parts.append(f"== {path.name}\n" + "\n".join(path.read_text().splitlines()[-15:]))
        return "\n".join(parts)

    # -- progress ------------------------------------------------------------------------

    def published(self) -> int:
        """Ticks the topic holds now (sum of the partitions' high watermarks)."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "faults-probe"})
        try:
            return sum(
                consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                for p in range(3)
            )
        finally:
            consumer.close()

    def wait_published(self, at_least: int) -> None:
        wait_until(
            lambda: self.published() >= at_least,
            f"{at_least} ticks in the topic",
            context=self.logs,
        )

    def finish(self) -> None:
        """Wait for the feed to end (replay exit 0) and the live cluster to have read all of
        it (the 1m window ending at 09:44:50 closed); then stop the cluster and run it bounded
        from its snapshots to the end of the topic, which closes every window."""
        assert self.replay is not None and self.cluster is not None
        wait_until(
            lambda: self.replay is not None and self.replay.poll() is not None,
            "the replay to finish",
            context=self.logs,
        )
        assert self.replay.returncode == 0, self.logs()
        client = redis.Redis.from_url(self.redis_url)
        wait_until(
            lambda: int(client.hget("window:1m", "end") or 0) * 1000 >= UNTIL_MS - 10_000,
            "the live run to reach 09:44:50",
            context=self.logs,
        )
        self.live_metrics = {port: scrape(port) for port in self.dataflow_ports}
        self.cluster.stop()
        self.cluster.env = {**self.cluster.env, "BOUNDED": "true"}
        self.cluster.start()
        codes = self.cluster.wait(DEADLINE_S)
        assert codes == [0, 0], self.logs()

    def dataflow_metric(self, name: str) -> float:
        """A dataflow metric summed over both processes of the live run (before its stop)."""
        return sum(total(samples, name) for samples in self.live_metrics.values())

    # -- the checks ----------------------------------------------------------------------

    def assert_nothing_lost(self) -> None:
        """The topic holds each replayed tick exactly once; every window in Redis history
        equals the oracle over those ticks, none skipped; nothing was dead-lettered."""
        arrivals, partition_of, duplicates = self.topic_ticks()
        assert duplicates == 0, f"{duplicates} ticks in the topic twice"
        assert len(arrivals) == self.limit
        # Lateness per partition, in the partition's order (what the dataflow sees).
        accepted, late = split_late(arrivals, partition_of.__getitem__, 5_000)
        assert not late, "the feed is in time order: nothing is late"
        assert_history_matches(
            redis.Redis.from_url(self.redis_url),
            oracle_windows(accepted, DEFAULT_SPECS),
            DEFAULT_SPECS,
        )
        letters = read_topic(self.bootstrap, self.dlq, expected=0, timeout_s=10, settle_s=2)
        assert letters == [], [dict(m.headers() or []) for m in letters[:5]]

    def topic_ticks(self) -> tuple[list[Tick], dict[str, int], int]:
        """Every tick of the topic (each partition's order kept), each symbol's partition, and
        how many replay sequences were there more than once."""
        messages = read_topic(self.bootstrap, self.topic, self.limit, timeout_s=120, settle_s=2)
        seqs: Counter[int] = Counter()
        ticks = []
        partition_of: dict[str, int] = {}
        for message in messages:
            headers = message.headers() or []
            assert isinstance(headers, list)
            seqs.update(int(v) for k, v in headers if k == SEQ_HEADER and isinstance(v, bytes))
            tick = decode(message.key(), message.value())
            assert isinstance(tick, Tick), tick
            ticks.append(tick)
            partition = message.partition()
            assert partition is not None
            assert partition_of.setdefault(tick.symbol, partition) == partition
        return ticks, partition_of, sum(count - 1 for count in seqs.values())


def live_run(bootstrap: str, redis_url: str, topic: str, dlq: str, work: Path) -> Iterator[LiveRun]:
    """Start the replay, then (every partition holding data) the dataflow; stop both after."""
    run = LiveRun(bootstrap, redis_url, topic, dlq, work, limit=len(feed_ticks()))
    redis.Redis.from_url(redis_url).flushdb()
    try:
        run.start_replay()
        run.wait_published(30)  # the first snapshot of all 30 stocks: every partition
        run.start_dataflow()
        client = redis.Redis.from_url(redis_url)
        wait_until(
            lambda: client.exists("window:1m") == 1, "the dataflow's first window", context=run.logs
        )  # running: a fault now is mid-run, not at start-up
        yield run
    finally:
        run.stop()
