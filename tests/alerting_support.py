"""The monitored pipeline of the alert tier: embedded Kafka and Redis, a paced replay feed
(services.replay for the symbols of partitions 0 and 1, services.ingest's replay provider for
those of partition 2), the dataflow as two processes, Prometheus loading the time-scaled
rule files, Alertmanager with the project's route, and a webhook receiver; plus the faults.

Symbols map to partitions as librdkafka's default partitioner puts them: CRC-32 of the key
modulo the partition count.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from dataflows.leaders.cluster import LocalCluster
from dataflows.leaders.local import wait_for_data
from services.replay.formats import Format
from services.replay.reader import iter_ticks
from services.replay.settings import DEFAULT_FILE
from stockstream.embedded._process import wait_until
from stockstream.embedded.kafka_broker import KafkaBroker
from stockstream.embedded.ports import free_port
from stockstream.embedded.redis_server import RedisServer
from stockstream.kafka import ensure_topics
from stockstream.monitoring.servers import AlertmanagerServer, PrometheusServer
from stockstream.monitoring.timescale import rule_files, write_scaled_rules
from stockstream.monitoring.webhook import WebhookReceiver
from stockstream.ticks import Tick, encode

PARTITIONS = 3
DLQ_TOPIC = "ticks.dlq"
STALL_PARTITION = 2  # fed by services.ingest alone, so stopping it quiets the partition
TIME_SCALE = 30  # for: 10m -> 20s, rate(...[5m]) -> rate(...[10s])
SCRAPE_INTERVAL_S = 1
REPLAY_SPEED = 10.0  # event seconds per second: a 1m window closes every wall second
REPLAY_FROM = "09:30"
EXCHANGE_TZ = ZoneInfo("Asia/Shanghai")  # the bundled SSE snapshots


def partition_of(symbol: str) -> int:
    return zlib.crc32(symbol.encode()) % PARTITIONS


def file_symbols() -> list[str]:
    ticks = islice(iter_ticks(DEFAULT_FILE, Format.AUTO, REPLAY_FROM, None), 500)
    return sorted({tick.symbol for tick in ticks})


def local_time_of(ts_ms: int) -> str:
    """Exchange-local time of day of `ts_ms`, as REPLAY_FROM takes it."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC).astimezone(EXCHANGE_TZ).strftime("%H:%M:%S")


@dataclass
class FeedProcess:
    """One feed process (`python -m <module>`) with a fixed metrics port across restarts."""

    name: str
    module: str
    env: Mapping[str, str]
    log_dir: Path
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, replay_from: str) -> None:
        env = {
            **os.environ,
            **self.env,
            "METRICS_PORT": str(self.metrics_port),
            "REPLAY_FROM": replay_from,
        }
        log = open(self.log_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class TestProducer:
    """Sends the same message to one partition every `period_s` in a thread (a fault)."""

    bootstrap: str
    topic: str
    key: bytes
    value: bytes
    partitions: tuple[int, ...]
    period_s: float
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TestProducer:
        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})

        def run() -> None:
            while not self._stop.wait(self.period_s):
                for partition in self.partitions:
                    producer.produce(self.topic, self.value, self.key, partition=partition)
                producer.poll(0)
            producer.flush(10)

        self._thread = threading.Thread(target=run, name="fault-producer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)


@dataclass
class MonitoredPipeline:
    workdir: Path
    broker: KafkaBroker | None = None
    redis: RedisServer | None = None
    replay: FeedProcess | None = None
    ingest: FeedProcess | None = None
    cluster: LocalCluster | None = None
    dataflow_ports: list[int] = field(default_factory=list)
    webhook: WebhookReceiver | None = None
    alertmanager: AlertmanagerServer | None = None
    prometheus: PrometheusServer | None = None

    topic: str = "ticks"

    def start(self) -> MonitoredPipeline:
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.broker = KafkaBroker(workdir=self.workdir / "kafka").start()
        self.redis = RedisServer(workdir=self.workdir / "redis").start()
        ensure_topics(self.broker.bootstrap, {self.topic: PARTITIONS, DLQ_TOPIC: 1})
        common = {
            "KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "TICKS_TOPIC": self.topic,
            "DLQ_TOPIC": DLQ_TOPIC,
            "LOG_LEVEL": "INFO",
        }
        symbols = file_symbols()
        stalled = [s for s in symbols if partition_of(s) == STALL_PARTITION]
        others = [s for s in symbols if partition_of(s) != STALL_PARTITION]
        feed = {**common, "REPLAY_SPEED": str(REPLAY_SPEED), "REPLAY_LOOP": "true"}
        self.replay = FeedProcess(
            "replay", "services.replay", {**feed, "REPLAY_SYMBOLS": ",".join(others)}, logs
        )
        self.ingest = FeedProcess(
            "ingest",
            "services.ingest",
            {
                **feed,
                "PROVIDER": "replay",
                "SYMBOLS": ",".join(stalled),
                "MEMBERSHIP": "static",
                "POD_NAME": "ingest-0",
            },
            logs,
        )
        self.replay.start(REPLAY_FROM)
        self.ingest.start(REPLAY_FROM)
        wait_for_data(self.broker.bootstrap, self.topic, timeout_s=120)
        self.dataflow_ports = [free_port(), free_port()]
        # The dataflow's own timers are scaled with the rules: the idle timeout (30 s) before
        # an idle partition's watermark follows the clock would otherwise look like a stall
        # to a WatermarkStalled whose `for:` shrank from 10 minutes to 20 s.
        self.cluster = LocalCluster(
            {
                **common,
                "REDIS_URL": self.redis.url,
                "REDIS_RETRY_MAX_S": "1",
                "IDLE_TIMEOUT_S": "1",
            },
            processes=2,
            log_dir=logs,
        )
        self.start_dataflow()
        self.webhook = WebhookReceiver().start()
        self.alertmanager = AlertmanagerServer(
            self.webhook.url, fast=True, workdir=self.workdir / "alertmanager"
        ).start()
        rules = self.workdir / "rules"
        write_scaled_rules(rule_files(), rules, TIME_SCALE, SCRAPE_INTERVAL_S)
        self.prometheus = PrometheusServer(
            self.targets(),
            rules,
            alertmanager=self.alertmanager.address,
            interval_s=SCRAPE_INTERVAL_S,
            workdir=self.workdir / "prometheus",
        ).start()
        return self

    def targets(self) -> dict[str, list[tuple[str, dict[str, str]]]]:
        assert self.replay and self.ingest
        return {
            "dataflow": [
                (f"127.0.0.1:{port}", {"pod": f"dataflow-{i}"})
                for i, port in enumerate(self.dataflow_ports)
            ],
            "replay": [(f"127.0.0.1:{self.replay.metrics_port}", {"pod": "replay"})],
            "ingest": [(f"127.0.0.1:{self.ingest.metrics_port}", {"pod": "ingest-0"})],
        }

    def start_dataflow(self) -> None:
        assert self.cluster is not None
        self.cluster.start_with_env([{"METRICS_PORT": str(p)} for p in self.dataflow_ports])

    # -- reading the pipeline through Prometheus ------------------------------------------

    def value(self, expr: str) -> float | None:
        assert self.prometheus is not None
        result = self.prometheus.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_value(self, expr: str, timeout_s: float, what: str) -> None:
        """Wait until `expr` returns a series (a condition such as `x > 0`)."""
        if not wait_until(lambda: self.value(expr) is not None, timeout_s, interval=1.0):
            raise AssertionError(
                f"{what}: `{expr}` returned nothing for {timeout_s} s\n" + self.diagnostics()
            )

    def wait_quiet(self, timeout_s: float = 120) -> None:
        """Wait until no alert is firing or pending (the previous fault fully repaired)."""
        assert self.prometheus is not None
        self.wait_value(
            'absent(ALERTS{alertstate=~"firing|pending"})',
            timeout_s,
            f"alerts still active: {self.prometheus.query('ALERTS')}",
        )

    def event_time_ms(self) -> int:
        """The furthest watermark of any partition (from the dataflow's lag gauge)."""
        lag = self.value("min(stockstream_watermark_lag_seconds)")
        assert lag is not None, "no watermark lag exported"
        return int((time.time() - lag) * 1000)

    def diagnostics(self) -> str:
        parts = [self.cluster.log_tail(15) if self.cluster else ""]
        for name in ("replay", "ingest"):
            path = self.workdir / "logs" / f"{name}.log"
            if path.exists():
                parts.append(f"== {name}\n" + "\n".join(path.read_text().splitlines()[-10:]))
        if self.prometheus is not None:
            parts.append(f"== targets {self.prometheus.targets_health()}")
        return "\n".join(parts)

    # -- faults ---------------------------------------------------------------------------

    def restart_feeds(self, *feeds: FeedProcess, ahead_s: float = 30.0) -> None:
        """Start `feeds` again from event time ahead of every watermark (no late ticks)."""
        replay_from = local_time_of(self.event_time_ms() + int(ahead_s * 1000))
        for feed in feeds:
            feed.start(replay_from)

    def bad_ticks(self, per_s: float) -> TestProducer:
        """Unparseable messages into every partition but the stalled one."""
        assert self.broker is not None
        partitions = tuple(p for p in range(PARTITIONS) if p != STALL_PARTITION)
        return TestProducer(
            self.broker.bootstrap,
            self.topic,
            b"600332",
            b"{not json",
            partitions,
            period_s=len(partitions) / per_s,
        ).start()

    def frozen_clock(self, symbol: str) -> TestProducer:
        """Valid ticks of `symbol` that all carry the same event time, just past the
        partition's watermark: the partition is busy, its watermark cannot move."""
        assert self.broker is not None
        partition = partition_of(symbol)
        lag = self.value(f'max(stockstream_watermark_lag_seconds{{partition="{partition}"}})')
        assert lag is not None, f"no watermark lag of partition {partition}"
        ts_ms = int((time.time() - lag) * 1000) + 1000
        key, value = encode(Tick(symbol, 10.0, ts_ms, 100.0, "test:frozen-clock"))
        return TestProducer(
            self.broker.bootstrap, self.topic, key, value, (partition_of(symbol),), period_s=0.05
        ).start()

    def refuse_dead_letters(self, refuse: bool) -> None:
        """Make the broker refuse (or accept again) every record of the dead-letter topic: its
        `max.message.bytes` set below any record's size (a misconfigured topic)."""
        assert self.broker is not None
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        entry = ConfigEntry(
            "max.message.bytes",
            "16" if refuse else None,
            incremental_operation=AlterConfigOpType.SET if refuse else AlterConfigOpType.DELETE,
        )
        resource = ConfigResource(ConfigResource.Type.TOPIC, DLQ_TOPIC, incremental_configs=[entry])
        for future in admin.incremental_alter_configs([resource]).values():
            future.result(timeout=30)

    def slow_redis(self, pause_ms: int, gap_ms: int = 500) -> threading.Event:
        """Redis holds every write for up to `pause_ms`, then serves for `gap_ms`, again and
        again until the returned event is set (CLIENT PAUSE WRITE): slow, not down. (Renewing
        the pause without a gap holds writes for good: they time out, and count as errors.)"""
        assert self.redis is not None
        client = self.redis.client()
        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                client.execute_command("CLIENT", "PAUSE", str(pause_ms), "WRITE")
                stop.wait((pause_ms + gap_ms) / 1000)
            client.execute_command("CLIENT", "UNPAUSE")
            client.close()

        threading.Thread(target=run, name="slow-redis", daemon=True).start()
        return stop

    def stop(self) -> None:
        for stop in (
            self.prometheus.close if self.prometheus else None,
            self.alertmanager.close if self.alertmanager else None,
            self.webhook.stop if self.webhook else None,
            self.replay.stop if self.replay else None,
            self.ingest.stop if self.ingest else None,
            self.cluster.stop if self.cluster else None,
            self.redis.close if self.redis else None,
            self.broker.close if self.broker else None,
        ):
            if stop is not None:
                try:
                    stop()
                except Exception as exc:
                    print(f"stopping: {exc!r}", file=sys.stderr)


def running_pipeline(workdir: Path) -> Iterator[MonitoredPipeline]:
    pipeline = MonitoredPipeline(workdir)
    try:
        yield pipeline.start()
    finally:
        pipeline.stop()
