"""The dataflow pods' exact configuration, run for real: each "pod" is the entrypoint with the
environment rendered from overlays/dev (own recovery directory = its PVC, own metrics port),
against the embedded Kafka and Redis. Two processes form a cluster, serve /healthz and
/metrics while running, create their recovery partitions and write leaderboards to Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
import redis

from stockstream.embedded.ports import LOOPBACK, free_port
from stockstream.embedded.topics import create_topic
from tests.deploy.conftest import REPO, env_of, find

pytestmark = pytest.mark.integration

SCRIPT = REPO / "deploy" / "docker" / "dataflow-entrypoint.sh"
SSE_FILE = REPO / "data/marketdata/sse-30-stocks/sse_snapshot_30stocks_20211201.csv.gz"
PROCESSES = 2


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def test_two_pods_run_the_leaders_dataflow(
    render, kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    from services.replay.producer import run_replay
    from services.replay.settings import ReplaySettings

    objs = render("overlays/dev")
    sts = find(objs, "StatefulSet", "dataflow")
    rendered = env_of(objs, sts, "dataflow")
    assert rendered["DATAFLOW_REPLICAS"] == str(PROCESSES)

    topic, dlq = f"ticks-{uuid.uuid4().hex[:8]}", f"dlq-{uuid.uuid4().hex[:8]}"
    create_topic(kafka_bootstrap, topic, 6)
    create_topic(kafka_bootstrap, dlq, 1)
    published = run_replay(
        ReplaySettings(
            kafka_bootstrap_servers=kafka_bootstrap,
            ticks_topic=topic,
            replay_file=str(SSE_FILE),
            replay_from="09:30",
            replay_speed=0,
            metrics_port=0,
        )
    )
    assert published.ok and published.published > 1000

    url = redis_url.rpartition("/")[0] + "/11"
    client = redis.Redis.from_url(url)
    client.flushdb()
    addresses = ";".join(f"{LOOPBACK}:{free_port()}" for _ in range(PROCESSES))
    metrics_ports = [free_port() for _ in range(PROCESSES)]
    recovery_root = tmp_path / "pvc"
    procs = []
    for index in range(PROCESSES):
        env = {
            **{k: v for k, v in rendered.items() if v != "<from>"},
            # What Kubernetes would provide / what points at the embedded servers instead.
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "POD_NAME": f"dataflow-{index}",
            "POD_NAMESPACE": "stockstream",
            "DATAFLOW_ADDRESSES": addresses,  # no cluster DNS here
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "TICKS_TOPIC": topic,
            "DLQ_TOPIC": dlq,
            "REDIS_URL": url,
            "METRICS_PORT": str(metrics_ports[index]),
            "RECOVERY_DIR": str(recovery_root / f"recovery-dataflow-{index}"),
            "BOUNDED": "true",  # stop at the end of the topic
            "LOG_LEVEL": "WARNING",
        }
        log = open(tmp_path / f"dataflow-{index}.log", "wb")  # noqa: SIM115 - child owns it
        procs.append(subprocess.Popen(["sh", str(SCRIPT)], env=env, stdout=log, stderr=log))

    def logs() -> str:
        return "\n".join(
            (tmp_path / f"dataflow-{i}.log").read_text(errors="replace")[-3000:]
            for i in range(PROCESSES)
        )

    try:
        healthy: set[int] = set()
        deadline = time.monotonic() + 120
        while len(healthy) < PROCESSES and time.monotonic() < deadline:
            for index, port in enumerate(metrics_ports):
                if index not in healthy and _get(f"http://{LOOPBACK}:{port}/healthz")[0] == 200:
                    status, body = _get(f"http://{LOOPBACK}:{port}/metrics")
                    assert status == 200 and "stockstream_ticks_decoded_total" in body
                    healthy.add(index)
            if any(p.poll() is not None for p in procs) and len(healthy) < PROCESSES:
                break
            time.sleep(0.2)
        assert healthy == set(range(PROCESSES)), f"not every process served /healthz\n{logs()}"
        codes = [p.wait(timeout=300) for p in procs]
        assert codes == [0] * PROCESSES, logs()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    partitions = int(rendered["RECOVERY_PARTITIONS"])
    for index in range(PROCESSES):
        parts = sorted((recovery_root / f"recovery-dataflow-{index}").glob("part-*.sqlite3"))
        # Process 0 creates every recovery partition; Bytewax finds them across the cluster.
        assert len(parts) == (partitions if index == 0 else 0), f"process {index}: {parts}"
    assert any(client.scan_iter("history:leaders:1m:*")), "no 1m leaderboard reached Redis"
    assert any(client.scan_iter("history:leaders:15m:*")), "no 15m leaderboard reached Redis"
