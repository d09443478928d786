"""deploy/docker/dataflow-entrypoint.sh: process id and peer list for each pod of the
dataflow StatefulSet, handed to `python -m dataflows.leaders` as PROCESS_ID / ADDRESSES."""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stockstream.logs import ecs_formatter
from tests.deploy.conftest import REPO

SCRIPT = REPO / "deploy" / "docker" / "dataflow-entrypoint.sh"
BASE_ENV = {
    "PATH": os.environ["PATH"],
    "DATAFLOW_STATEFULSET": "dataflow",
    "DATAFLOW_SERVICE": "dataflow-headless",
    "DATAFLOW_PORT": "2101",
}


def run(
    env: dict[str, str], *command: str, path_prefix: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full = {**BASE_ENV, **env}
    if path_prefix is not None:
        full["PATH"] = f"{path_prefix}:{full['PATH']}"
    return subprocess.run(
        ["sh", str(SCRIPT), *command],
        env=full,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def python_line(level: int) -> dict[str, Any]:
    """A line as stockstream.logs writes it for the dataflow (ecs-logging)."""
    record = logging.makeLogRecord(
        {
            "name": "dataflows.leaders",
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": "x",
        }
    )
    return json.loads(ecs_formatter("leaders").format(record))


def assert_ecs_shape(record: dict[str, Any]) -> None:
    """The shell's line has the ECS fields, types and formats of the Python processes' lines."""
    python = python_line(logging.INFO)
    assert set(record) == {"@timestamp", "log.level", "message", "ecs.version", "log", "service"}
    assert set(record) <= set(python)
    assert record["ecs.version"] == python["ecs.version"]
    assert record["service"] == python["service"]
    assert record["log"] == {"logger": "dataflow-entrypoint"}
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
    assert stamp.fullmatch(python["@timestamp"]) and stamp.fullmatch(record["@timestamp"])


def exported(env: dict[str, str]) -> dict[str, str]:
    proc = run(env, "sh", "-c", 'printf "%s\\n%s\\n" "$PROCESS_ID" "$ADDRESSES"')
    assert proc.returncode == 0, proc.stderr
    process_id, addresses = proc.stdout.splitlines()
    return {"PROCESS_ID": process_id, "ADDRESSES": addresses}


def test_script_is_executable_posix_sh() -> None:
    assert SCRIPT.stat().st_mode & stat.S_IXUSR
    mode = subprocess.run(
        ["git", "ls-files", "-s", str(SCRIPT)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if mode.stdout:
        assert mode.stdout.startswith("100755"), "commit the entrypoint with its executable bit"
    assert SCRIPT.read_text().startswith("#!/bin/sh\n")
    proc = subprocess.run(["sh", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    if (dash := Path("/bin/dash")).exists():
        assert subprocess.run([str(dash), "-n", str(SCRIPT)], check=False).returncode == 0


@pytest.mark.parametrize(
    ("pod", "replicas"),
    [("dataflow-0", 1), ("dataflow-0", 3), ("dataflow-2", 3), ("dataflow-11", 12)],
)
def test_process_id_and_addresses(pod: str, replicas: int) -> None:
    out = exported(
        {"POD_NAME": pod, "DATAFLOW_REPLICAS": str(replicas), "POD_NAMESPACE": "stockstream"}
    )
    assert out["PROCESS_ID"] == pod.rsplit("-", 1)[1]
    assert out["ADDRESSES"].split(";") == [
        f"dataflow-{i}.dataflow-headless.stockstream.svc.cluster.local:2101"
        for i in range(replicas)
    ]


def test_cluster_domain_and_explicit_addresses() -> None:
    out = exported(
        {
            "POD_NAME": "dataflow-1",
            "DATAFLOW_REPLICAS": "2",
            "POD_NAMESPACE": "ns",
            "CLUSTER_DOMAIN": "example.local",
        }
    )
    assert out["ADDRESSES"].endswith("dataflow-1.dataflow-headless.ns.svc.example.local:2101")
    out = exported(
        {
            "POD_NAME": "x-1",
            "DATAFLOW_REPLICAS": "2",
            "DATAFLOW_ADDRESSES": "127.0.0.1:1;127.0.0.1:2",
        }
    )
    assert out == {"PROCESS_ID": "1", "ADDRESSES": "127.0.0.1:1;127.0.0.1:2"}


def test_hostname_is_the_default_pod_name(tmp_path: Path) -> None:
    fake = tmp_path / "hostname"
    fake.write_text("#!/bin/sh\necho dataflow-1\n")
    fake.chmod(0o755)
    proc = run(
        {"DATAFLOW_REPLICAS": "2", "POD_NAMESPACE": "ns"},
        "sh",
        "-c",
        'echo "$PROCESS_ID"',
        path_prefix=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"POD_NAME": "dataflow-3", "DATAFLOW_REPLICAS": "3"}, "not below DATAFLOW_REPLICAS"),
        ({"POD_NAME": "dataflow", "DATAFLOW_REPLICAS": "3"}, "cannot derive a process id"),
        ({"POD_NAME": "dataflow-x", "DATAFLOW_REPLICAS": "3"}, "cannot derive a process id"),
        ({"POD_NAME": "dataflow-0", "DATAFLOW_REPLICAS": "0"}, "positive integer"),
        ({"POD_NAME": "dataflow-0", "DATAFLOW_REPLICAS": "two"}, "positive integer"),
        (
            {"POD_NAME": "dataflow-0", "DATAFLOW_REPLICAS": "2", "DATAFLOW_PORT": "http"},
            "port number",
        ),
        (
            {"POD_NAME": "dataflow-0", "DATAFLOW_REPLICAS": "2", "DATAFLOW_ADDRESSES": "a:1"},
            "1 entries",
        ),
        (
            {"POD_NAME": "dataflow-0", "DATAFLOW_REPLICAS": "2", "POD_NAMESPACE": ""},
            "POD_NAMESPACE",
        ),
    ],
)
def test_misconfiguration_fails_fast_with_a_json_log_line(
    env: dict[str, str], message: str
) -> None:
    proc = run({"POD_NAMESPACE": "ns", **env}, "true")
    assert proc.returncode == 64
    record = json.loads(proc.stderr.strip().splitlines()[-1])
    assert record["log.level"] == "error" and message in record["message"]
    assert_ecs_shape(record)


def test_default_command_is_the_dataflow_runner(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "$@|$PROCESS_ID|$ADDRESSES"\n')
    fake.chmod(0o755)
    proc = run(
        {"POD_NAME": "dataflow-0", "DATAFLOW_REPLICAS": "1", "POD_NAMESPACE": "ns"},
        path_prefix=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "-m dataflows.leaders|0|dataflow-0.dataflow-headless.ns.svc.cluster.local:2101"
    )
    start = json.loads(proc.stderr.strip().splitlines()[-1])
    assert start["log.level"] == "info" and start["service"] == {"name": "leaders"}
    assert_ecs_shape(start)


def test_the_dataflow_settings_read_what_the_entrypoint_exports() -> None:
    """PROCESS_ID / ADDRESSES are the names dataflows.leaders.settings reads."""
    from dataflows.leaders.settings import DataflowSettings

    out = exported({"POD_NAME": "dataflow-1", "DATAFLOW_REPLICAS": "3", "POD_NAMESPACE": "ns"})
    # Strings, as in the environment: the settings coerce them to their field types.
    fields: dict[str, Any] = {k.lower(): v for k, v in out.items()}
    settings = DataflowSettings(_env_file=None, **fields)
    from_env = _settings_from_env(DataflowSettings, out)
    for s in (settings, from_env):
        assert s.process_id == 1
        assert s.addresses is not None and len(s.addresses.split(";")) == 3


def _settings_from_env(cls, env: dict[str, str]):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return cls()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_dockerfile_installs_the_entrypoint() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert (
        "COPY deploy/docker/dataflow-entrypoint.sh /usr/local/bin/dataflow-entrypoint" in dockerfile
    )
