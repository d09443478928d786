"""The base's NetworkPolicies enforced on a real cluster: a pod outside the rules cannot reach
Redis, directly or through its Service; the dataflow can.

On the project's own cluster (scripts/cluster: bridge CNI, which ignores policies) the
policies are enforced by kube-router's policy controller, started here with
scripts/netpol/kube-router.sh (built from the Go module proxy) and stopped again if this test
started it. On another cluster (STOCKSTREAM_KUBECONFIG) its network plugin must enforce them,
or this test fails.

The Redis pod is a stand-in speaking just enough RESP for a PING (Python on the cluster's base
image): what is under test is the path to a pod labelled `app.kubernetes.io/name: redis` on
port 6379, which the policies select by label and port only.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.cluster_support import KubeCluster, poll
from tests.deploy.conftest import REPO, Manifest

pytestmark = pytest.mark.integration

POD_TIMEOUT_S = 300.0  # first pull of the base image on a loaded machine
ENFORCE_TIMEOUT_S = 180.0  # kube-router syncs a new policy within seconds; generous
KUBE_ROUTER = REPO / "scripts" / "netpol" / "kube-router.sh"

REDIS_STANDIN = """
import socketserver
class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        while self.rfile.readline():
            self.wfile.write(b"+PONG\\r\\n")
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("0.0.0.0", 6379), Handler).serve_forever()
"""

PING = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], 6379), timeout=3) as s:
        s.sendall(b"PING\\r\\n")
        s.settimeout(3)
        sys.exit(0 if s.recv(16) == b"+PONG\\r\\n" else 1)
except OSError as exc:
    print(exc)
    sys.exit(1)
"""


def pod(name: str, app: str, image: str, script: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "stockstream"},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-c", script],
                    "securityContext": {
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "runAsNonRoot": True,
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"memory": "96Mi"},
                    },
                }
            ],
        },
    }


def apply(cluster: KubeCluster, namespace: str, objects: list[dict[str, Any]]) -> None:
    cluster.kubectl(
        "-n",
        namespace,
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}),
    )


@pytest.fixture(scope="module")
def enforcing(kube_cluster: KubeCluster) -> Iterator[None]:
    """kube-router's policy controller on the project's own cluster (started if needed)."""
    if not kube_cluster.own:
        yield
        return
    env = {**os.environ, "KUBECONFIG": str(kube_cluster.kubeconfig)}
    already = subprocess.run([str(KUBE_ROUTER), "status"], env=env, check=False).returncode == 0
    if not already:
        proc = subprocess.run(
            [str(KUBE_ROUTER), "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        assert proc.returncode == 0, f"scripts/netpol/kube-router.sh start failed:\n{proc.stderr}"
    try:
        yield
    finally:
        if not already:
            stop = subprocess.run(
                [str(KUBE_ROUTER), "stop"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            left = subprocess.run(
                ["iptables", "-S"], capture_output=True, text=True, timeout=60, check=False
            ).stdout
            assert stop.returncode == 0, f"kube-router.sh stop failed:\n{stop.stderr}"
            assert "KUBE-ROUTER" not in left and "KUBE-NWPLCY" not in left, (
                "kube-router's chains are still on the node"
            )


@pytest.fixture(scope="module")
def namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    name = f"netpol-{uuid.uuid4().hex[:6]}"
    kube_cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kube_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def can_ping(cluster: KubeCluster, namespace: str, client: str, host: str) -> bool:
    proc = cluster.kubectl(
        "-n",
        namespace,
        "exec",
        client,
        "--",
        "python3",
        "-c",
        PING,
        host,
        timeout_s=60,
        check=False,
    )
    return proc.returncode == 0


@pytest.mark.timeout(1800)  # image pulls and up to three policy-sync polls on a loaded node
def test_a_pod_outside_the_rules_cannot_reach_redis(
    kube_cluster: KubeCluster,
    enforcing: None,
    namespace: str,
    render: Callable[[str], list[Manifest]],
) -> None:
    image = kube_cluster.image("python:3.11")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "redis"},
        "spec": {
            "selector": {"app.kubernetes.io/name": "redis"},
            "ports": [{"port": 6379, "targetPort": 6379}],
        },
    }
    apply(
        kube_cluster,
        namespace,
        [
            pod("redis", "redis", image, REDIS_STANDIN),
            service,
            pod("dataflow", "dataflow", image, "import time; time.sleep(86400)"),
            pod("stranger", "debug", image, "import time; time.sleep(86400)"),
        ],
    )
    kube_cluster.kubectl(
        "-n",
        namespace,
        "wait",
        "--for=condition=Ready",
        "pod/redis",
        "pod/dataflow",
        "pod/stranger",
        f"--timeout={POD_TIMEOUT_S:.0f}s",
        timeout_s=POD_TIMEOUT_S + 30,
    )
    redis_ip = kube_cluster.get_json("-n", namespace, "pod", "redis")["status"]["podIP"]

    # Control: without policies everyone reaches it, so a refusal below is the policies' doing.
    poll(
        "the stranger reaching Redis before any policy",
        lambda: can_ping(kube_cluster, namespace, "stranger", redis_ip),
        timeout_s=120,
    )

    policies = [
        dict(p, metadata={k: v for k, v in p["metadata"].items() if k != "namespace"})
        for p in render("overlays/dev")
        if p["kind"] == "NetworkPolicy"
    ]
    assert {p["metadata"]["name"] for p in policies} >= {"default-deny", "allow-dns", "redis"}
    apply(kube_cluster, namespace, policies)

    poll(
        "the policies to cut the stranger off",
        lambda: not can_ping(kube_cluster, namespace, "stranger", redis_ip),
        timeout_s=ENFORCE_TIMEOUT_S,
    )
    service_ip = kube_cluster.get_json("-n", namespace, "service", "redis")["spec"]["clusterIP"]
    poll(
        "the dataflow reaching Redis through its Service",
        lambda: can_ping(kube_cluster, namespace, "dataflow", service_ip),
        timeout_s=ENFORCE_TIMEOUT_S,
    )
    for host in (redis_ip, service_ip):  # directly and through the Service
        assert not can_ping(kube_cluster, namespace, "stranger", host), host
    assert can_ping(kube_cluster, namespace, "dataflow", redis_ip)
