"""Driving the real deployment on a Kubernetes cluster in tests: kubectl with the cluster's
kubeconfig, `skaffold run -p local-cluster`, polling, port-forwards and pod metrics.

Nothing here is mocked: every call is the `kubectl` or `skaffold` a user would run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster_support import KubeCluster, poll

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = "stockstream"
PROFILE = "local-cluster"


@dataclass(frozen=True)
class Kube:
    """kubectl against one cluster (kubeconfig + optional context), in one namespace."""

    kubeconfig: str
    context: str | None = None
    kubectl_bin: str = "kubectl"
    namespace: str = NAMESPACE

    def argv(self, *args: str, namespaced: bool = True) -> list[str]:
        argv = [self.kubectl_bin, "--kubeconfig", self.kubeconfig]
        if self.context:
            argv += ["--context", self.context]
        if namespaced:
            argv += ["-n", self.namespace]
        return [*argv, *args]

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        timeout_s: float = 120,
        check: bool = True,
        namespaced: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args, namespaced=namespaced),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(
                proc.returncode, proc.args, proc.stdout, proc.stderr
            )
        return proc

    def out(self, *args: str, timeout_s: float = 120) -> str:
        return self.run(*args, timeout_s=timeout_s).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.out(*args, "-o", "json"))

    def pods(self, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", "pods"] + (["-l", selector] if selector else [])
        return list(self.json(*args)["items"])

    def raw(self, path: str) -> str:
        """GET through the API server (e.g. a pod's /metrics via the pods/proxy subresource)."""
        return self.run("get", "--raw", path, timeout_s=30).stdout

    def pod_metrics(self, pod: str, port: int = 9100) -> str:
        return self.raw(f"/api/v1/namespaces/{self.namespace}/pods/{pod}:{port}/proxy/metrics")

    def exec(
        self, pod: str, container: str, *cmd: str, timeout_s: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return self.run("exec", pod, "-c", container, "--", *cmd, timeout_s=timeout_s, check=False)

    def logs(self, target: str, tail: int = 50) -> str:
        return self.run("logs", target, f"--tail={tail}", "--all-containers", check=False).stdout

    @contextmanager
    def port_forward(
        self, target: str, remote_port: int, local_port: int | None = None
    ) -> Iterator[int]:
        """`kubectl port-forward <target> <local>:<remote>` on a free loopback port (or
        `local_port`, as skaffold's port-forwards do); yields the local port once it accepts
        connections; stopped by its PID."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", local_port or 0))
            local = probe.getsockname()[1]
        proc = subprocess.Popen(
            self.argv("port-forward", "--address", "127.0.0.1", target, f"{local}:{remote_port}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:

            def listening() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"port-forward {target} exited: {proc.stdout.read()}")  # type: ignore[union-attr]
                with socket.socket() as s:
                    s.settimeout(1)
                    return s.connect_ex(("127.0.0.1", local)) == 0

            poll(f"port-forward {target}:{remote_port}", listening, 60, 0.5)
            yield local
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_ready(kube: Kube, selector: str, count: int, timeout_s: float = 600) -> list[dict]:
    """Wait until exactly `count` pods match `selector`, all Ready and none terminating."""

    def check() -> list[dict] | None:
        pods = [p for p in kube.pods(selector) if not p["metadata"].get("deletionTimestamp")]
        if len(pods) == count and all(ready(p) for p in pods):
            return pods
        return None

    return poll(f"{count} Ready pods {selector}", check, timeout_s)


def skaffold_binary() -> str:
    """skaffold built from Go modules (scripts/cluster/build-skaffold.sh, cached)."""
    out = subprocess.run(
        [str(REPO / "scripts/cluster/build-skaffold.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert out.returncode == 0, f"build-skaffold.sh failed:\n{out.stderr[-3000:]}"
    return out.stdout.strip().splitlines()[-1]


def build_third_party_images() -> list[str]:
    """Kafka, Redis and Prometheus images from Debian/Maven (deploy/images/build.sh)."""
    out = subprocess.run(
        [str(REPO / "deploy/images/build.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert out.returncode == 0, f"deploy/images/build.sh failed:\n{out.stderr[-3000:]}"
    return out.stdout.split()


def skaffold_run(kube: Kube, log_path: Path, profile: str = PROFILE) -> None:
    """`skaffold run -p <profile>` (local-cluster by default) as a user runs it, against the
    test cluster."""
    skaffold = skaffold_binary()
    build_third_party_images()
    argv = [
        skaffold,
        "run",
        "-p",
        profile,
        "--kubeconfig",
        kube.kubeconfig,
        "--status-check=true",
        "--port-forward=off",
    ]
    if kube.context:
        argv += ["--kube-context", kube.context]
    env = {**os.environ, "KUBECONFIG": kube.kubeconfig, "PATH": _path_with_kubectl(kube)}
    with open(log_path, "w") as log:
        proc = subprocess.run(
            argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=2400, check=False
        )
    assert proc.returncode == 0, f"skaffold run failed:\n{log_path.read_text()[-5000:]}"


def _path_with_kubectl(kube: Kube) -> str:
    """PATH with the cluster's kubectl first (skaffold runs `kubectl` from PATH)."""
    directory = str(Path(kube.kubectl_bin).parent) if os.sep in kube.kubectl_bin else ""
    return os.pathsep.join(p for p in (directory, os.environ.get("PATH", "")) if p)


def metric_values(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of `name` in a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                samples.append((dict(sample.labels), float(sample.value)))
    return samples


def metric_value(text: str, name: str) -> float:
    values = metric_values(text, name)
    assert len(values) == 1, f"{name}: {values}"
    return values[0][1]


def kube_for(cluster: KubeCluster) -> Kube:
    """A `Kube` for the `kube_cluster` fixture's cluster (tests/cluster_support.py)."""
    return Kube(
        kubeconfig=str(cluster.kubeconfig),
        context=cluster.context,
        kubectl_bin=str(cluster.kubectl_path),
    )


def kustomize_binary() -> str:
    """Path of kustomize, installed into .cache/ by scripts/install-kustomize.sh if needed."""
    proc = subprocess.run(
        [str(REPO / "scripts" / "install-kustomize.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ.copy(),
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AssertionError(f"scripts/install-kustomize.sh failed:\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]
