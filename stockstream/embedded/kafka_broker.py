"""A real single-node Apache Kafka broker (KRaft, broker+controller) on loopback ports.

The jars come from Maven Central via ``scripts/bootstrap.sh`` (into ``.cache/kafka/libs``);
only a JVM is needed at run time.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from confluent_kafka.admin import AdminClient

from stockstream.embedded import _process
from stockstream.embedded._server import EmbeddedServer
from stockstream.embedded.ports import LOOPBACK, free_port

__all__ = ["REPO_ROOT", "KafkaBroker", "KafkaLibsMissingError", "default_libs_dir"]

REPO_ROOT: Path = Path(__file__).resolve().parents[2]
LIBS_ENV = "STOCKSTREAM_KAFKA_LIBS"
_REPO_LOG4J = REPO_ROOT / "scripts" / "kafka" / "log4j.properties"

# Used when the repo's scripts/kafka/log4j.properties is not available (e.g. installed
# as a non-editable package): WARN and above to stderr (which ends up in kafka.log).
_DEFAULT_LOG4J = """\
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
"""

_log = logging.getLogger(__name__)


class KafkaLibsMissingError(FileNotFoundError):
    """The Kafka jars were not downloaded yet."""


def default_libs_dir() -> Path:
    """``$STOCKSTREAM_KAFKA_LIBS`` or ``<repo root>/.cache/kafka/libs``."""
    env = os.environ.get(LIBS_ENV)
    return Path(env) if env else REPO_ROOT / ".cache" / "kafka" / "libs"


def _random_cluster_id() -> str:
    """A Kafka ``Uuid`` string (22 chars URL-safe base64), like ``kafka-storage random-uuid``."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not cid.startswith("-"):
            return cid


class KafkaBroker(EmbeddedServer):
    workdir_prefix = "stockstream-kafka-"

    """A single-node KRaft Kafka (``process.roles=broker,controller``) on 127.0.0.1.

    Usage::

        with KafkaBroker() as broker:
            producer = Producer({"bootstrap.servers": broker.bootstrap})

    The data directory (and storage format) is created on the first ``start()`` and kept
    across ``stop()``/``start()``/``restart()``, which also reuse the same ports, so topic
    data survives a broker restart. ``close()`` (or leaving the ``with`` block) stops the
    broker and deletes the data directory if this object created it.
    """

    def __init__(
        self,
        port: int | None = None,
        controller_port: int | None = None,
        *,
        libs_dir: Path | str | None = None,
        workdir: Path | str | None = None,
        num_partitions: int = 3,
        heap: str = "512m",
        java: str = "java",
        extra_properties: Mapping[str, str | int] | None = None,
        startup_timeout: float = 120.0,
        stop_timeout: float = 30.0,
    ) -> None:
        """Configure (but do not start) a broker; ``None`` ports are picked free now."""
        self.host: str = LOOPBACK
        self.port: int = port if port is not None else free_port()
        self.controller_port: int = controller_port if controller_port is not None else free_port()
        if self.controller_port == self.port:
            self.controller_port = free_port()
        self.libs_dir: Path = Path(libs_dir) if libs_dir is not None else default_libs_dir()
        self.num_partitions = num_partitions
        self.heap = heap
        self.java = java
        self.extra_properties: dict[str, str] = {
            k: str(v) for k, v in (extra_properties or {}).items()
        }
        self.startup_timeout = startup_timeout
        self.cluster_id: str = _random_cluster_id()
        super().__init__(workdir, stop_timeout)

    # -- properties -------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` value: ``127.0.0.1:PORT``."""
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        """Kafka ``log.dirs`` (topic data + KRaft metadata log)."""
        return self.workdir / "data"

    @property
    def config_path(self) -> Path:
        """The generated ``server.properties``."""
        return self.workdir / "server.properties"

    @property
    def log_path(self) -> Path:
        """The broker JVM's combined stdout/stderr log."""
        return self.workdir / "kafka.log"

    # -- config -----------------------------------------------------------------------

    def properties(self) -> dict[str, str]:
        """The ``server.properties`` content as a dict."""
        props: dict[str, str] = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": str(self.num_partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "5",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "5",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "delete.topic.enable": "true",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.hours": "-1",
            "log.retention.bytes": "-1",
        }
        props.update(self.extra_properties)
        return props

    def _write_config(self) -> None:
        text = "".join(f"{k}={v}\n" for k, v in self.properties().items())
        self.config_path.write_text(text)

    def _log4j_config(self) -> Path:
        if _REPO_LOG4J.is_file():
            return _REPO_LOG4J
        path = self.workdir / "log4j.properties"
        path.write_text(_DEFAULT_LOG4J)
        return path

    def _java_argv(self, main_class: str, *args: str, heap: str | None = None) -> list[str]:
        java = shutil.which(self.java)
        if java is None:
            raise FileNotFoundError(
                f"'{self.java}' not found in PATH; run scripts/bootstrap.sh "
                "(installs default-jre-headless)"
            )
        jvm = [
            java,
            f"-Xmx{heap or self.heap}",
            "-Xms64m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:TieredStopAtLevel=1",  # faster JVM warm-up; throughput is irrelevant here
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self._log4j_config()}",
            "-cp",
            str(self.libs_dir / "*"),
        ]
        return [*jvm, main_class, *args]

    def _check_libs(self) -> None:
        if not any(self.libs_dir.glob("kafka_2.13-*.jar")):
            raise KafkaLibsMissingError(
                f"Kafka jars not found in {self.libs_dir} (no kafka_2.13-*.jar). "
                f"Run scripts/bootstrap.sh to download them from Maven Central, "
                f"or point ${LIBS_ENV} at a directory containing them."
            )

    def _format_storage(self) -> None:
        """``kafka-storage.sh format`` once per data dir (skipped when already formatted)."""
        meta = self.data_dir / "meta.properties"
        if meta.is_file():
            for line in meta.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() == "cluster.id":
                    self.cluster_id = value.strip()
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = self._java_argv(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(self.config_path),
            "--ignore-formatted",
            heap="256m",
        )
        res = subprocess.run(
            argv, cwd=self.workdir, capture_output=True, text=True, timeout=120, check=False
        )
        with open(self.workdir / "format.log", "w") as fh:
            fh.write(res.stdout + res.stderr)
        if res.returncode != 0:
            raise _process.ServerStartError(
                f"kafka StorageTool format failed (exit {res.returncode}):\n"
                f"{res.stdout[-4000:]}{res.stderr[-4000:]}"
            )

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> Self:
        """Start the broker (formatting storage on first start) and wait until it serves
        metadata. No-op if already running."""
        if self.is_running:
            return self
        self._check_libs()
        self._write_config()
        self._format_storage()
        argv = self._java_argv("kafka.Kafka", str(self.config_path))
        self._proc = _process.spawn(argv, self.log_path, cwd=self.workdir)
        _process.register(id(self), self.stop)
        if not _process.wait_until(
            self._serves_metadata,
            self.startup_timeout,
            interval=0.25,
            alive=lambda: self.is_running,
        ):
            self._start_failed(
                f"Kafka broker on {self.bootstrap}",
                f"did not serve metadata within {self.startup_timeout}s",
            )
        return self

    def _serves_metadata(self) -> bool:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "socket.connection.setup.timeout.ms": 1000,
            "reconnect.backoff.max.ms": 200,
            "logger": _log,  # keep librdkafka's connection-refused noise off stderr
        }
        admin = AdminClient(conf)
        try:
            md = admin.list_topics(timeout=2)
        except Exception:  # KafkaException while not up yet
            return False
        # The cluster id guards against some other broker already listening on this port.
        return bool(md.brokers) and md.cluster_id == self.cluster_id

    def restart(self) -> Self:
        """``stop()`` then ``start()`` with the same ports and data."""
        self.stop()
        return self.start()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running else "stopped"
        return f"KafkaBroker({self.bootstrap}, {state})"
