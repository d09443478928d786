"""Fast tier of the operator: a real kube-apiserver (no nodes, no controllers), the CRD and
the operator's RBAC applied, the operator running as `python -m services.operator` with only
that RBAC, a real Kafka (topics) and a real password-protected Redis (freshness)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes.dynamic import DynamicClient

from stockstream.embedded._process import log_tail, spawn, terminate
from stockstream.embedded.ports import free_port
from stockstream.embedded.redis_server import RedisServer
from tests.control_plane_support import ROOT, ControlPlane, control_plane

T = TypeVar("T")
REDIS_PASSWORD = "op-test-redis-pass"
INTERVAL_S = 1.0
LEASE_NAMESPACE = "stockstream-system"


@pytest.fixture(scope="session")
def plane() -> Iterator[ControlPlane]:
    with control_plane() as cp:
        # On a loaded machine the API server answers /version before it accepts writes (its
        # post-start hooks still running): retry the first apply instead of failing the session.
        crd = str(ROOT / "deploy/kustomize/operator/install/crd.yaml")
        wait_for(
            "the CRD applied",
            lambda: (
                cp.kubectl_run("apply", "--server-side", "-f", crd, check=False).returncode == 0
                or None
            ),
            timeout_s=300,
        )
        cp.kubectl_run(
            "wait",
            "--for=condition=Established",
            "--timeout=120s",
            "crd/stockstreams.stockstream.io",
        )
        # The operator's ClusterRole from the manifests, bound to the test's `operator` user.
        docs = list(
            yaml.safe_load_all((ROOT / "deploy/kustomize/operator/install/rbac.yaml").read_text())
        )
        role = next(d for d in docs if d["kind"] == "ClusterRole")
        binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding")
        user = [{"kind": "User", "name": "operator", "apiGroup": "rbac.authorization.k8s.io"}]
        binding["subjects"] = user
        # and its Role for the Lease, in the namespace the kustomization puts it in
        lease_role = next(d for d in docs if d["kind"] == "Role")
        lease_binding = next(d for d in docs if d["kind"] == "RoleBinding")
        lease_binding["subjects"] = user
        for doc in (lease_role, lease_binding):
            doc["metadata"]["namespace"] = LEASE_NAMESPACE
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}}
        path = cp.workdir / "rbac.yaml"
        path.write_text(yaml.safe_dump_all([namespace, role, binding, lease_role, lease_binding]))
        cp.kubectl_run("apply", "-f", str(path))
        yield cp


@pytest.fixture(scope="session")
def op_redis() -> Iterator[RedisServer]:
    with RedisServer(password=REDIS_PASSWORD) as server:
        yield server


@dataclass
class OperatorProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_port: int
    env: dict[str, str]

    def tail(self) -> str:
        return log_tail(self.log, 60)

    def restart(self) -> None:
        """Stop the operator by PID (SIGTERM) and start a new one with the same settings."""
        terminate(self.proc, timeout=60)
        self.proc = spawn([sys.executable, "-m", "services.operator"], self.log, ROOT, self.env)


def start_operator(plane: ControlPlane, log: Path, **settings: str) -> OperatorProcess:
    """`python -m services.operator` with the `operator` user's token (its RBAC only), its
    metrics and health on free loopback ports; `settings`: more environment variables."""
    kubeconfig = plane.kubeconfig(plane.operator_token, plane.workdir / "operator.kubeconfig")
    metrics_port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "RECONCILE_INTERVAL_S": str(INTERVAL_S),
        "METRICS_PORT": str(metrics_port),
        "HEALTH_PORT": str(free_port()),
        "LOG_LEVEL": "INFO",
        "LISTEN_HOST": "127.0.0.1",
        **settings,
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return OperatorProcess(
        spawn([sys.executable, "-m", "services.operator"], log, ROOT, env), log, metrics_port, env
    )


@pytest.fixture(scope="session")
def operator(
    plane: ControlPlane,
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    op_redis: RedisServer,
) -> Iterator[OperatorProcess]:
    """The operator of the fast tier (it holds its Lease alone); stopped before the broker
    and Redis it talks to."""
    log = tmp_path_factory.mktemp("operator") / "operator.log"  # kept by pytest
    op = start_operator(plane, log, POD_NAME="operator-session")
    try:
        yield op
    finally:
        terminate(op.proc, timeout=30)


class Cluster:
    """The admin's view for assertions: dicts in, dicts out."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.api = plane.api()
        self.dyn = DynamicClient(self.api)

    def res(self, api_version: str, kind: str) -> Any:
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, name: str, ns: str) -> dict[str, Any] | None:
        from kubernetes.dynamic.exceptions import NotFoundError

        try:
            out: dict[str, Any] = self.res(api_version, kind).get(name=name, namespace=ns).to_dict()
        except NotFoundError:
            return None
        return out

    def objs(
        self, api_version: str, kind: str, ns: str, selector: str = ""
    ) -> list[dict[str, Any]]:
        items = self.res(api_version, kind).get(namespace=ns, label_selector=selector).items
        return [i.to_dict() for i in items]

    def create(self, body: dict[str, Any], ns: str) -> dict[str, Any]:
        out: dict[str, Any] = (
            self.res(body["apiVersion"], body["kind"]).create(body=body, namespace=ns).to_dict()
        )
        return out

    def patch_ss(self, name: str, ns: str, spec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = (
            self.res("stockstream.io/v1alpha1", "StockStream")
            .patch(
                name=name,
                namespace=ns,
                body={"spec": spec},
                content_type="application/merge-patch+json",
            )
            .to_dict()
        )
        return out

    def ss(self, name: str, ns: str) -> dict[str, Any] | None:
        return self.get("stockstream.io/v1alpha1", "StockStream", name, ns)

    def events(self, name: str, ns: str) -> list[dict[str, Any]]:
        items = (
            self.res("v1", "Event")
            .get(namespace=ns, field_selector=f"involvedObject.name={name}")
            .items
        )
        # in creation order (resourceVersions of new objects increase)
        return sorted(
            (i.to_dict() for i in items), key=lambda e: int(e["metadata"]["resourceVersion"])
        )


@pytest.fixture(scope="session")
def cluster(plane: ControlPlane) -> Cluster:
    return Cluster(plane)


@pytest.fixture
def namespace(cluster: Cluster) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, "")
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "redis-auth"},
            "data": {"password": base64.b64encode(REDIS_PASSWORD.encode()).decode()},
        },
        name,
    )
    return name


def wait_for(
    what: str,
    fn: Callable[[], T | None],
    timeout_s: float = 120.0,
    on_fail: Callable[[], str] = lambda: "",
) -> T:
    """Poll `fn` until it returns a truthy value (returned), or fail with `what`."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{on_fail()}")


@pytest.fixture
def stockstream_body(kafka_bootstrap: str, op_redis: RedisServer) -> Callable[..., dict[str, Any]]:
    """`make(name, **spec overrides)`: a StockStream on the test Kafka and Redis with its own
    topic."""

    def make(name: str, **spec: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "image": "stockstream:test",
            "broker": {
                "bootstrapServers": kafka_bootstrap,
                "topic": f"ticks-{uuid.uuid4().hex[:8]}",
                "partitions": 4,
            },
            "redis": {
                "url": f"redis://127.0.0.1:{op_redis.port}/1",
                "passwordSecret": {"name": "redis-auth"},
            },
            "feed": {"provider": "ingest-replay", "replicas": 1, "symbols": ["600000", "600519"]},
        }
        for key, value in spec.items():
            base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
        return {
            "apiVersion": "stockstream.io/v1alpha1",
            "kind": "StockStream",
            "metadata": {"name": name},
            "spec": base,
        }

    return make
