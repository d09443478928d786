"""The Kubernetes cluster of the cluster tests: the session fixture `kube_cluster`.

Which cluster (checked in this order):
  1. ``$STOCKSTREAM_KUBECONFIG`` (+ optional ``$STOCKSTREAM_KUBE_CONTEXT``): that cluster, e.g.
     a kind cluster with a local registry (``$STOCKSTREAM_REGISTRY``, default localhost:5000).
     kubectl from ``$STOCKSTREAM_KUBECTL``, else PATH, else the one scripts/cluster builds.
  2. On Debian as root: the project's own single-node cluster, started with
     ``scripts/cluster/up.sh`` (idempotent: a running one is reused). Stopped at the end with
     ``scripts/cluster/down.sh`` only if this session started it (and
     ``$STOCKSTREAM_KEEP_CLUSTER`` is not set).
  3. Otherwise the tests fail loudly, saying what to do. They are never skipped.

Registered in tests/conftest.py (``pytest_plugins``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CLUSTER_SCRIPTS = REPO / "scripts" / "cluster"
KUBERNETES_VERSION = os.environ.get("KUBERNETES_VERSION", "v1.34.3")
UP_TIMEOUT_S = 45 * 60  # a cold build of everything on a loaded 2-core machine
NODE_NAME = "stockstream-node"  # scripts/cluster/lib.sh


def cache_root() -> Path:
    """``$STOCKSTREAM_CACHE``, as the scripts compute it."""
    if os.environ.get("STOCKSTREAM_CACHE"):
        return Path(os.environ["STOCKSTREAM_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "stockstream"


@dataclass(frozen=True)
class KubeCluster:
    """A reachable cluster: what tests need to talk to it and to give it images."""

    kubeconfig: Path
    context: str | None  # None: the kubeconfig's current context
    registry: str  # image registry host as the cluster's nodes pull from it (localhost:5000)
    kubectl_path: Path
    own: bool  # the project's own cluster of scripts/cluster (guards checked on it)

    def kubectl_argv(self, *args: str) -> list[str]:
        """argv of ``kubectl <args>`` against this cluster."""
        argv = [str(self.kubectl_path), "--kubeconfig", str(self.kubeconfig)]
        if self.context:
            argv += ["--context", self.context]
        return [*argv, *args]

    def kubectl(
        self, *args: str, stdin: str | None = None, timeout_s: float = 120.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl <args>``; with check, a failure raises with kubectl's stderr."""
        proc = subprocess.run(
            self.kubectl_argv(*args),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc

    def get_json(self, *args: str) -> dict[str, Any]:
        """``kubectl get <args> -o json`` parsed."""
        out: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return out

    def image(self, name: str) -> str:
        """The full reference of one of the cluster's base images, e.g. ``python:3.11``."""
        return f"{self.registry}/stockstream/{name}"


def poll(
    what: str, check: Callable[[], Any], timeout_s: float = 180.0, every_s: float = 1.0
) -> Any:
    """Call ``check`` until it returns a truthy value (returned) or fail after ``timeout_s``.
    Exceptions count as "not yet"; the last one is reported."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = result
        except Exception as exc:  # polled until the deadline, reported then
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}: {last!r}")
        time.sleep(every_s)


def external_cluster() -> KubeCluster | None:
    """The cluster named by $STOCKSTREAM_KUBECONFIG, if set (fails if it is unusable)."""
    kubeconfig = os.environ.get("STOCKSTREAM_KUBECONFIG")
    if not kubeconfig:
        return None
    if not Path(kubeconfig).is_file():
        pytest.fail(f"STOCKSTREAM_KUBECONFIG={kubeconfig} is not a file")
    own_kubectl = cache_root() / "kubernetes" / KUBERNETES_VERSION / "bin" / "kubectl"
    kubectl = os.environ.get("STOCKSTREAM_KUBECTL") or shutil.which("kubectl")
    if not kubectl and own_kubectl.exists():
        kubectl = str(own_kubectl)
    if not kubectl:
        pytest.fail(
            "STOCKSTREAM_KUBECONFIG is set but no kubectl was found: install kubectl, set "
            "STOCKSTREAM_KUBECTL, or run scripts/cluster/build-kubernetes.sh"
        )
    own = Path(kubeconfig).resolve() == (cache_root() / "cluster" / "kubeconfig").resolve()
    return KubeCluster(
        kubeconfig=Path(kubeconfig),
        context=os.environ.get("STOCKSTREAM_KUBE_CONTEXT") or None,
        registry=os.environ.get("STOCKSTREAM_REGISTRY", "localhost:5000"),
        kubectl_path=Path(kubectl),
        own=own,
    )


def _own_cluster_running() -> bool:
    pid_file = cache_root() / "cluster" / "run" / "kube-apiserver.pid"
    try:
        return Path(f"/proc/{int(pid_file.read_text())}").exists()
    except (OSError, ValueError):
        return False


def _run_script(name: str, timeout_s: float) -> None:
    log = cache_root() / "cluster" / "logs" / f"{name}-pytest-{os.getpid()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.run(
            [str(CLUSTER_SCRIPTS / f"{name}.sh")],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
            check=False,
        )
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        pytest.fail(f"scripts/cluster/{name}.sh failed ({proc.returncode}); log {log}:\n{tail}")


def require_local_means(is_debian: bool, euid: int) -> None:
    """Fail loudly (never skip) when no cluster is named and this machine cannot run ours."""
    if is_debian and euid == 0:
        return
    pytest.fail(
        "The cluster tests need Kubernetes and none is configured. Either point them at a "
        "cluster: STOCKSTREAM_KUBECONFIG=<kubeconfig> [STOCKSTREAM_KUBE_CONTEXT=<ctx>] "
        "(e.g. kind with a local registry on localhost:5000), or run them as root on "
        "Debian, where scripts/cluster/up.sh builds and starts a single-node cluster. "
        f"(CI={os.environ.get('CI', '')!r}: these tests never skip.)"
    )


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """The session's Kubernetes cluster (see the module docstring)."""
    external = external_cluster()
    if external is not None:
        yield external
        return
    require_local_means(Path("/etc/debian_version").exists(), os.geteuid())
    started_here = not _own_cluster_running()
    _run_script("up", UP_TIMEOUT_S)
    k8s_bin = cache_root() / "kubernetes" / KUBERNETES_VERSION / "bin"
    yield KubeCluster(
        kubeconfig=cache_root() / "cluster" / "kubeconfig",
        context="stockstream",
        registry="localhost:5000",
        kubectl_path=k8s_bin / "kubectl",
        own=True,
    )
    if started_here and not os.environ.get("STOCKSTREAM_KEEP_CLUSTER"):
        _run_script("down", 300)
