"""`python -m dataflows.leaders.local`: the whole pipeline on one machine, no cluster needed.

Starts a local redis-server and Kafka broker (unless `REDIS_URL` / `KAFKA_BOOTSTRAP_SERVERS`
name running ones, e.g. a Redpanda), creates the topics, feeds ticks through the ingestion
service (`PROVIDER`: real market data replayed by default, or simulated, or a live API), runs
the dataflow as a two-process Bytewax cluster and prints the live leaderboards until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from confluent_kafka import Consumer, KafkaException, TopicPartition
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dataflows.leaders.cluster import LocalCluster
from dataflows.leaders.show import DEFAULT_WINDOWS, snapshot
from stockstream.cli import load_settings
from stockstream.embedded.kafka_broker import KafkaBroker
from stockstream.embedded.ports import free_port
from stockstream.embedded.redis_server import RedisServer
from stockstream.kafka import ensure_topics
from stockstream.logs import configure_logging
from stockstream.monitoring.local import monitoring
from stockstream.settings import RedisUrl

log = logging.getLogger("dataflows.leaders.local")


class LocalRunSettings(BaseSettings):
    """Settings of the local run (environment variables of the same names, upper case)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap_servers: str | None = Field(None, description="Use this broker, not ours.")
    redis_url: RedisUrl | None = Field(None, description="Use this Redis, not ours.")
    ticks_topic: str = Field("ticks", description="Topic carrying ticks keyed by symbol.")
    dlq_topic: str = Field("ticks.dlq", description="Dead-letter topic for rejected messages.")
    topic_partitions: int = Field(3, gt=0, description="Partitions of a created ticks topic.")
    processes: int = Field(2, gt=0, description="Dataflow processes.")
    provider: str = Field(
        "replay", description="Ingestion provider: replay, simulate, finnhub_quote, finnhub_trades."
    )
    replay_file: str | None = Field(None, description="Default: the 30 Shanghai stocks.")
    replay_speed: float = Field(30.0, ge=0, description="Event time per wall time; 0 = max.")
    replay_from: str | None = Field(
        "09:30", description="Skip rows earlier in the day (replay), local exchange time."
    )
    refresh_s: float = Field(1.0, gt=0, description="Leaderboard refresh period.")
    run_for_s: float | None = Field(None, description="Stop after this long (default: Ctrl-C).")
    monitoring: bool = Field(False, description="Also run Prometheus and Alertmanager.")


@dataclass(frozen=True)
class RedisUrls:
    """Where the dataflow writes (ACL user `writer`) and the leaderboards are read (`reader`)."""

    writer: str
    reader: str


@contextlib.contextmanager
def servers(settings: LocalRunSettings, workdir: Path) -> Iterator[tuple[str, RedisUrls]]:
    """(bootstrap, Redis URLs): the given ones, or local servers started here and stopped
    after. Our Redis persists (AOF + RDB in `workdir/redis`) and has the ACL users of
    `stockstream.redis_acl` with passwords made up for this run."""
    with contextlib.ExitStack() as stack:
        bootstrap = settings.kafka_bootstrap_servers
        if bootstrap is None:
            print("starting a local Kafka broker (KRaft) ...", flush=True)
            bootstrap = stack.enter_context(KafkaBroker(workdir=workdir / "kafka")).bootstrap
        if settings.redis_url is not None:
            urls = RedisUrls(settings.redis_url, settings.redis_url)
        else:
            users = {name: secrets.token_urlsafe(16) for name in ("writer", "reader")}
            redis_server = stack.enter_context(
                RedisServer(
                    password=secrets.token_urlsafe(16), users=users, workdir=workdir / "redis"
                )
            )
            urls = RedisUrls(redis_server.url_for("writer"), redis_server.url_for("reader"))
        yield bootstrap, urls


def wait_for_data(bootstrap: str, topic: str, timeout_s: float = 60) -> None:
    """Wait until every partition of `topic` holds a tick, so the ranking starts whole."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "stockstream-local"})
    try:
        deadline = time.monotonic() + timeout_s
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        while time.monotonic() < deadline:
            try:
                if all(
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] > 0
                    for p in partitions
                ):
                    return
            except KafkaException as exc:  # a new topic's leaders are still being elected
                log.info("waiting for partition leaders", extra={"error": str(exc)})
            time.sleep(0.2)
    finally:
        consumer.close()
    raise TimeoutError(f"no ticks reached every partition of {topic!r} in {timeout_s} s")


def run(settings: LocalRunSettings) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="stockstream-") as tmp,
        servers(settings, Path(tmp)) as (bootstrap, redis_urls),
    ):
        workdir = Path(tmp)
        ensure_topics(
            bootstrap, {settings.ticks_topic: settings.topic_partitions, settings.dlq_topic: 1}
        )
        common = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "TICKS_TOPIC": settings.ticks_topic,
            "DLQ_TOPIC": settings.dlq_topic,
            "LOG_LEVEL": "WARNING",
        }
        ingest_env = {
            **os.environ,
            **common,
            "PROVIDER": settings.provider,
            "REPLAY_SPEED": str(settings.replay_speed),
            "REPLAY_LOOP": "true",
            "METRICS_PORT": str(free_port() if settings.monitoring else 0),
            "MEMBERSHIP": "static",
        }
        if settings.replay_file:
            ingest_env["REPLAY_FILE"] = settings.replay_file
        if settings.replay_from:
            ingest_env["REPLAY_FROM"] = settings.replay_from
        ingest_log = open(workdir / "ingest.log", "ab")  # noqa: SIM115 - closed in finally
        ingest = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"],
            env=ingest_env,
            stdout=ingest_log,
            stderr=ingest_log,
            start_new_session=True,
        )
        metrics_ports = [free_port() for _ in range(settings.processes)]
        cluster = LocalCluster(
            {**common, "REDIS_URL": redis_urls.writer}, settings.processes, log_dir=workdir / "logs"
        )
        try:
            wait_for_data(bootstrap, settings.ticks_topic)
            cluster.start_with_env([{"METRICS_PORT": str(p)} for p in metrics_ports])
            print(
                f"broker {bootstrap}  redis (reader) {redis_urls.reader}  dataflow metrics "
                + " ".join(f"http://127.0.0.1:{p}/metrics" for p in metrics_ports),
                flush=True,
            )
            with contextlib.ExitStack() as stack:
                banner = ""
                if settings.monitoring:  # same job and pod names as in the cluster
                    prometheus, alertmanager = stack.enter_context(
                        monitoring(
                            {
                                "dataflow": [
                                    (f"127.0.0.1:{p}", {"pod": f"dataflow-{i}"})
                                    for i, p in enumerate(metrics_ports)
                                ],
                                "ingest": [
                                    (f"127.0.0.1:{ingest_env['METRICS_PORT']}", {"pod": "ingest-0"})
                                ],
                            },
                            workdir,
                        )
                    )
                    banner = (
                        f"prometheus {prometheus.url}/alerts  alertmanager {alertmanager.url}\n"
                    )
                time.sleep(2)
                watch(settings, redis_urls.reader, cluster, ingest, banner)
        except KeyboardInterrupt:
            print("\nstopping ...", flush=True)
        finally:
            ingest.terminate()
            ingest.wait(60)
            ingest_log.close()
            cluster.stop()


def watch(
    settings: LocalRunSettings,
    redis_url: str,
    cluster: LocalCluster,
    ingest: subprocess.Popen[bytes],
    banner: str = "",
) -> None:
    """Print the leaderboards every `refresh_s` until Ctrl-C, `run_for_s`, or a crash."""
    client = redis.Redis.from_url(redis_url)
    started = time.monotonic()
    while settings.run_for_s is None or time.monotonic() - started < settings.run_for_s:
        for proc in [*cluster.procs, ingest]:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"a pipeline process exited ({proc.args!r}):\n" + cluster.log_tail()
                )
        board = snapshot(client, DEFAULT_WINDOWS)
        clear = "\033[H\033[2J" if sys.stdout.isatty() else ""
        print(f"{clear}stockstream local run (Ctrl-C to stop)\n{banner}\n{board}", flush=True)
        time.sleep(settings.refresh_s)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    settings = load_settings(LocalRunSettings, "stockstream local", __doc__)
    configure_logging("local", "WARNING")
    signal.signal(signal.SIGINT, _interrupt)  # also when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)
    run(settings)


if __name__ == "__main__":
    main()
