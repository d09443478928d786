"""Feeding the deployed pipeline and checking what lands in Redis: bounded slices of the SSE
session published by the in-cluster replay (a Job made from the replay Deployment's own pod
template), and every window in Redis compared with the brute-force oracle.

Slices follow each other in event time, with gaps of 12 minutes or more (more than the wall
time between two slices in the tests), so that the dataflow's watermark, which follows wall
time while the input is idle, never makes a later slice late."""

from __future__ import annotations

import copy
import json
import subprocess
from dataclasses import dataclass, field
from datetime import time
from typing import Any

import redis

from dataflows.leaders.specs import DEFAULT_SPECS
from services.replay.producer import replay_ticks
from services.replay.settings import ReplaySettings
from stockstream.ticks import Tick
from tests.dataflows.leaders.oracle import OracleWindow, oracle_windows, split_late
from tests.dataflows.leaders.pipeline import (
    SSE_FILE,
    assert_window_in_history,
    ends_of,
    history_ends,
)
from tests.deploy_support import Kube, poll

REDIS_PASSWORD = "stockstream-dev-redis"  # overlays/local-cluster, dev-only
LATENESS_MS = 5_000  # LATENESS_S of base/kustomization.yaml
# The replay image keeps the data under /app (Dockerfile); see base/replay.yaml.
IMAGE_SSE_FILE = "/app/data/marketdata/sse-30-stocks/sse_snapshot_30stocks_20211201.csv.gz"


@dataclass(frozen=True)
class Slice:
    """REPLAY_FROM / REPLAY_LIMIT / REPLAY_SPEED of one replay run."""

    name: str
    from_time: str
    limit: int
    speed: float = 0.0

    def env(self) -> dict[str, str]:
        return {
            "REPLAY_FILE": IMAGE_SSE_FILE,
            "REPLAY_FROM": self.from_time,
            "REPLAY_LIMIT": str(self.limit),
            "REPLAY_SPEED": str(self.speed),
            "REPLAY_LOOP": "false",
        }

    def ticks(self) -> list[Tick]:
        settings = ReplaySettings(
            replay_file=SSE_FILE,
            replay_from=time.fromisoformat(self.from_time),
            replay_limit=self.limit,
            metrics_port=0,
        )
        return list(replay_ticks(settings))


def replay_job_manifest(kube: Kube, job_name: str, env: dict[str, str]) -> dict[str, Any]:
    """A Job running the replay Deployment's pod template (image, command, hardening) once,
    with `env` set on top of the Deployment's own."""
    deployment = kube.json("get", "deployment", "replay")
    template = copy.deepcopy(deployment["spec"]["template"])
    # The replay's own name label (the NetworkPolicies of base/ let `replay` reach the broker).
    template["metadata"] = {
        "labels": {
            "app.kubernetes.io/name": "replay",
            "app.kubernetes.io/instance": job_name,
            "app.kubernetes.io/part-of": "stockstream",
        },
        "annotations": template["metadata"].get("annotations", {}),
    }
    template["spec"]["restartPolicy"] = "Never"
    (container,) = template["spec"]["containers"]
    kept = [e for e in container.get("env", []) if e["name"] not in env]
    container["env"] = kept + [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name, "labels": template["metadata"]["labels"]},
        "spec": {"backoffLimit": 0, "template": template},
    }


def run_replay_job(kube: Kube, piece: Slice, wait: bool = True) -> str:
    """Create the Job for `piece`; with `wait`, wait until it succeeded. Returns its name."""
    name = f"replay-{piece.name}"
    kube.run("delete", "job", name, "--ignore-not-found", "--wait=true")
    kube.run("create", "-f", "-", stdin=json.dumps(replay_job_manifest(kube, name, piece.env())))
    if wait:
        wait_replay_job(kube, name, piece.limit)
    return name


def wait_replay_job(kube: Kube, name: str, published: int, timeout_s: float = 600) -> None:
    """The Job succeeded and its `replay finished` log line says every tick was delivered."""

    def done() -> bool:
        status = kube.json("get", "job", name)["status"]
        if status.get("failed"):
            raise AssertionError(f"job {name} failed:\n{kube.logs(f'job/{name}', 80)}")
        return bool(status.get("succeeded"))

    poll(f"replay job {name} succeeded", done, timeout_s, 3)
    lines = [
        json.loads(line)
        for line in kube.logs(f"job/{name}", 200).splitlines()
        if line.startswith("{") and "replay finished" in line
    ]
    assert lines, f"no 'replay finished' line in job {name}'s log"
    # ECS log lines keep a call's extra fields under `stockstream` (stockstream/logs.py).
    finished = lines[-1].get("stockstream", lines[-1])
    assert (finished["published"], finished["delivered"], finished["failed"]) == (
        published,
        published,
        0,
    ), finished


@dataclass
class Feed:
    """Every slice published so far, in order, and the oracle over all their ticks."""

    slices: list[Slice] = field(default_factory=list)

    def add(self, piece: Slice) -> None:
        self.slices.append(piece)

    def oracle(self) -> dict[tuple[str, int], OracleWindow]:
        ticks = [t for piece in self.slices for t in piece.ticks()]
        accepted, late = split_late(ticks, lambda symbol: 0, LATENESS_MS)
        assert not late, "slices are in event-time order: nothing is late under any partitioning"
        return oracle_windows(accepted, DEFAULT_SPECS)


def redis_client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, password=REDIS_PASSWORD)


def redis_cli(port: int, *command: str) -> str:
    """`redis-cli` against the port-forwarded Service, as the README tells users to."""
    proc = subprocess.run(
        [
            "redis-cli",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "--no-auth-warning",
            "-a",
            REDIS_PASSWORD,
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return proc.stdout


def wait_all_one_minute_windows(client: redis.Redis, oracle: dict, timeout_s: float) -> None:
    """Every 1-minute window of the oracle is in Redis: the input has been idle long enough
    for the watermark (following wall time) to close them all."""
    want = max(ends_of(oracle, "1m"))
    poll(
        "the last 1m window in Redis",
        lambda: max(history_ends(client, "1m"), default=0) >= want,
        timeout_s,
        3,
    )


def assert_redis_matches_oracle(client: redis.Redis, oracle: dict) -> dict[str, int]:
    """Each spec's windows in the history keys are exactly the oracle's up to the newest one
    written (windows still open are absent), every one with the oracle's figures and top 3,
    and every 1m window is there. Returns the number of windows checked per spec."""
    checked = {}
    for spec in DEFAULT_SPECS:
        want = ends_of(oracle, spec.name)
        got = history_ends(client, spec.name)
        assert got, f"no {spec.name} windows in Redis"
        newest = max(got)
        assert got == {e for e in want if e <= newest}, (
            f"{spec.name}: missing {sorted({e for e in want if e <= newest} - got)[:5]}, "
            f"extra {sorted(got - want)[:5]}"
        )
        if spec.name == "1m":
            assert newest == max(want)
        for end_ms in sorted(got):
            assert_window_in_history(client, spec, oracle[(spec.name, end_ms)], end_ms)
        checked[spec.name] = len(got)
    return checked


def leaders_from_cli(port: int, spec: str) -> list[tuple[str, float]]:
    """`redis-cli ZREVRANGE leaders:<spec> 0 2 WITHSCORES` parsed into (symbol, score)."""
    lines = redis_cli(port, "ZREVRANGE", f"leaders:{spec}", "0", "2", "WITHSCORES").split()
    return [(lines[i], float(lines[i + 1])) for i in range(0, len(lines), 2)]
