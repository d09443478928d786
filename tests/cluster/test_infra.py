"""The test cluster itself, with real pods: node, guards, local registry images, DNS,
PersistentVolumeClaims through the default StorageClass, ClusterIP Services.

One namespace per session (deleted at the end); pods run the local Python base image
(``<registry>/stockstream/python:3.11``) as uid 10001 with a read-only root filesystem.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster_support import CLUSTER_SCRIPTS, KubeCluster, poll

POD_TIMEOUT_S = 300.0  # first pull of the base image on a loaded machine
SERVER_PORT = 8080


def pod_manifest(name: str, image: str, command: list[str], **spec: Any) -> dict[str, Any]:
    """A restart-never pod running ``command`` as uid 10001 on a read-only root filesystem."""
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Always",
        "command": command,
        "securityContext": {
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "10m", "memory": "32Mi"}},
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        # python as PID 1 ignores SIGTERM: do not wait the default 30 s on deletion
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
            **spec,
        },
    }


@pytest.fixture(scope="module")
def namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    name = f"infra-{uuid.uuid4().hex[:6]}"
    kube_cluster.kubectl("create", "namespace", name)
    # pods get a service-account token only if the account exists: wait for `default`
    poll(
        "the default ServiceAccount",
        lambda: (
            kube_cluster.kubectl(
                "-n", name, "get", "serviceaccount", "default", check=False
            ).returncode
            == 0
        ),
    )
    yield name
    kube_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(cluster: KubeCluster, namespace: str, *objects: dict[str, Any]) -> None:
    items = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    cluster.kubectl("-n", namespace, "apply", "-f", "-", stdin=json.dumps(items))


def run_to_completion(cluster: KubeCluster, namespace: str, pod: dict[str, Any]) -> str:
    """Apply a restart-never pod, wait until it ended, return its logs; fail unless it
    Succeeded."""
    apply(cluster, namespace, pod)
    name = pod["metadata"]["name"]

    def ended() -> str | None:
        phase: str = cluster.get_json("-n", namespace, "pod", name)["status"].get("phase", "")
        return phase if phase in {"Succeeded", "Failed"} else None

    phase = poll(f"pod {name} to finish", ended, timeout_s=POD_TIMEOUT_S)
    logs = cluster.kubectl("-n", namespace, "logs", name).stdout
    if phase != "Succeeded":
        described = cluster.kubectl("-n", namespace, "describe", "pod", name, check=False).stdout
        raise AssertionError(f"pod {name} {phase}; logs:\n{logs}\n{described}")
    return logs


def test_node_is_ready(kube_cluster: KubeCluster) -> None:
    nodes = kube_cluster.get_json("nodes")["items"]
    assert nodes, "the cluster has no node"
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", f"node {node['metadata']['name']} Ready={ready}"
        assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.")


def uplink_devices() -> set[str]:
    """This machine's default-route interfaces (eth0)."""
    route = subprocess.run(
        ["ip", "-4", "-j", "route", "show", "default"], capture_output=True, text=True, check=True
    ).stdout
    return {r["dev"] for r in json.loads(route)}


def uplink_addresses() -> set[str]:
    """IPv4 addresses of this machine's default-route interface."""
    addresses = set()
    for dev in uplink_devices():
        out = subprocess.run(
            ["ip", "-4", "-j", "addr", "show", "dev", dev],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        addresses |= {a["local"] for i in json.loads(out) for a in i["addr_info"]}
    return addresses


def test_guards_are_in_place(kube_cluster: KubeCluster) -> None:
    """On the project's own cluster: the mangle DROP rules on the uplink and the unreachable
    route of the pod range, read from iptables and `ip route`. An external cluster (kind)
    runs in its own network; then no node of it may sit on this machine's uplink address
    unguarded."""
    if not kube_cluster.own:
        node_ips = {
            a["address"]
            for n in kube_cluster.get_json("nodes")["items"]
            for a in n["status"]["addresses"]
            if a["type"] == "InternalIP"
        }
        assert not node_ips & uplink_addresses(), (
            f"an external cluster's node uses this machine's uplink address {node_ips}: "
            "run the project's own cluster (scripts/cluster/up.sh), which installs the guards"
        )
        return
    mangle = subprocess.run(
        ["iptables", "-w", "5", "-t", "mangle", "-S"], capture_output=True, text=True, check=True
    ).stdout
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "type", "unreachable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    devices = uplink_devices()
    assert devices, "no default route: which interface do the guards protect?"
    for dev in devices:
        for rule in (
            f"-A FORWARD -o {dev} ",
            f"-A POSTROUTING -d 10.96.0.0/16 -o {dev} ",
            f"-A POSTROUTING -d 10.244.0.0/16 -o {dev} ",
        ):
            assert any(
                line.startswith(rule) and line.endswith("-j DROP") for line in mangle.splitlines()
            ), f"missing mangle rule {rule}...-j DROP"
    assert "unreachable 10.244.0.0/16" in routes
    check = subprocess.run(
        [str(CLUSTER_SCRIPTS / "guards.sh"), "check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    # the cluster's only listeners off loopback are the two the PREROUTING guard drops
    assert exposed_cluster_ports() <= {6443, 10250}


CLUSTER_PROGRAMS = (
    "etcd",
    "kube-apiserver",
    "kube-controller",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "containerd",
    "docker-registry",
    "coredns",
)


def exposed_cluster_ports() -> set[int]:
    """TCP/UDP ports the cluster's processes listen on at a non-loopback address."""
    out = subprocess.run(["ss", "-ltunpH"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        fields = line.split()
        local, users = fields[4], " ".join(fields[6:])
        address, _, port = local.rpartition(":")
        if address.startswith(("127.", "[::1]", "[::ffff:127.")):
            continue
        if any(f'"{name}"' in users for name in CLUSTER_PROGRAMS):
            ports.add(int(port))
    return ports


def test_pod_from_local_registry_runs_as_10001_read_only(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    script = (
        "import os\n"
        "print('uid', os.getuid(), 'gid', os.getgid())\n"
        "try:\n"
        "    open('/probe', 'w')\n"
        "except OSError as exc:\n"
        "    print('write', exc.errno, exc.strerror)\n"
        "else:\n"
        "    print('write ok')\n"
    )
    pod = pod_manifest("whoami", kube_cluster.image("python:3.11"), ["python3", "-c", script])
    logs = run_to_completion(kube_cluster, namespace, pod)
    assert "uid 10001 gid 10001" in logs
    assert "write 30 Read-only file system" in logs  # EROFS
    status = kube_cluster.get_json("-n", namespace, "pod", "whoami")["status"]
    image_id = status["containerStatuses"][0]["imageID"]
    assert image_id.startswith(f"{kube_cluster.registry}/stockstream/python@sha256:"), image_id


@pytest.fixture(scope="module")
def web_service(kube_cluster: KubeCluster, namespace: str) -> str:
    """A pod serving HTTP on 8080 behind the ClusterIP Service ``web``; returns its IP."""
    server = pod_manifest(
        "web",
        kube_cluster.image("python:3.11"),
        ["python3", "-m", "http.server", str(SERVER_PORT), "--directory", "/etc"],
    )
    server["spec"]["restartPolicy"] = "Always"
    server["spec"]["containers"][0]["readinessProbe"] = {
        "tcpSocket": {"port": SERVER_PORT},
        "periodSeconds": 2,
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": SERVER_PORT, "protocol": "TCP"}],
        },
    }
    apply(kube_cluster, namespace, server, service)
    kube_cluster.kubectl(
        "-n",
        namespace,
        "wait",
        "--for=condition=Ready",
        "pod/web",
        f"--timeout={POD_TIMEOUT_S:.0f}s",
        timeout_s=POD_TIMEOUT_S + 30,
    )
    ip: str = kube_cluster.get_json("-n", namespace, "service", "web")["spec"]["clusterIP"]
    return ip


def test_cluster_dns_resolves_a_service_from_a_pod(
    kube_cluster: KubeCluster, namespace: str, web_service: str
) -> None:
    script = (
        "import socket, sys, time\n"
        "for _ in range(60):\n"
        "    try:\n"
        f"        print(socket.gethostbyname('web.{namespace}.svc.cluster.local')); break\n"
        "    except OSError as exc:\n"
        "        print('retry', exc, file=sys.stderr); time.sleep(1)\n"
        "else:\n"
        "    sys.exit(1)\n"
    )
    logs = run_to_completion(
        kube_cluster,
        namespace,
        pod_manifest("dns", kube_cluster.image("python:3.11"), ["python3", "-c", script]),
    )
    assert logs.split() == [web_service]


def test_clusterip_service_answers_from_the_host(
    kube_cluster: KubeCluster, namespace: str, web_service: str
) -> None:
    """The pod serves /etc, so /hostname is the pod's name. On an external cluster (kind)
    ClusterIPs are not routed to this host: there the apiserver's service proxy is used."""
    if kube_cluster.own:

        def fetch() -> bytes:
            with urllib.request.urlopen(f"http://{web_service}/hostname", timeout=5) as response:
                return bytes(response.read())
    else:

        def fetch() -> bytes:
            path = f"/api/v1/namespaces/{namespace}/services/web:80/proxy/hostname"
            return kube_cluster.kubectl("get", "--raw", path).stdout.encode()

    # kube-proxy needs about 2 s to program a new Service: retried by poll
    assert poll("the ClusterIP from the host", fetch, timeout_s=60.0).strip() == b"web"


def test_clusterip_service_answers_from_a_pod(
    kube_cluster: KubeCluster, namespace: str, web_service: str
) -> None:
    script = (
        "import sys, time, urllib.request\n"
        "for _ in range(60):\n"
        "    try:\n"
        "        with urllib.request.urlopen('http://web/hostname', timeout=5) as r:\n"
        "            print(r.read().decode().strip()); break\n"
        "    except OSError as exc:\n"
        "        print('retry', exc, file=sys.stderr); time.sleep(1)\n"
        "else:\n"
        "    sys.exit(1)\n"
    )
    logs = run_to_completion(
        kube_cluster,
        namespace,
        pod_manifest("client", kube_cluster.image("python:3.11"), ["python3", "-c", script]),
    )
    assert logs.strip() == "web"


def test_statefulset_pvc_binds_through_default_storage_class_and_persists(
    kube_cluster: KubeCluster, namespace: str
) -> None:
    """A StatefulSet's volumeClaimTemplate binds through the default StorageClass (no class
    named); its pod writes to the volume; the pod deleted and recreated reads it back."""
    classes = kube_cluster.get_json("storageclass")["items"]
    defaults = [
        c["metadata"]["name"]
        for c in classes
        if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    assert len(defaults) == 1, f"expected one default StorageClass, got {defaults}"
    script = (
        "import pathlib, time\n"
        "p = pathlib.Path('/data/probe.txt')\n"
        "print('found' if p.exists() else 'created', flush=True)\n"
        "p.exists() or p.write_text('persisted')\n"
        "print(p.read_text(), flush=True)\n"
        "time.sleep(3600)\n"
    )
    pod = pod_manifest(
        "store",
        kube_cluster.image("python:3.11"),
        ["python3", "-c", script],
        container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        securityContext={"fsGroup": 10001},
    )
    pod["spec"]["restartPolicy"] = "Always"
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "store"},
        "spec": {
            "serviceName": "store",
            "replicas": 1,
            "selector": {"matchLabels": {"app": "store"}},
            "template": {"metadata": {"labels": {"app": "store"}}, "spec": pod["spec"]},
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "64Mi"}},
                    },
                }
            ],
        },
    }
    apply(kube_cluster, namespace, statefulset)

    def logs_of_running_pod() -> list[str]:
        status = kube_cluster.get_json("-n", namespace, "pod", "store-0")["status"]
        running = status.get("containerStatuses", [{}])[0].get("state", {}).get("running")
        if not running:
            return []
        lines = kube_cluster.kubectl("-n", namespace, "logs", "store-0").stdout.split()
        return lines if len(lines) >= 2 else []

    assert poll("store-0 to write", logs_of_running_pod, POD_TIMEOUT_S) == ["created", "persisted"]
    pvc = kube_cluster.get_json("-n", namespace, "pvc", "data-store-0")
    assert pvc["status"]["phase"] == "Bound"
    assert pvc["spec"]["storageClassName"] == defaults[0]
    uid = kube_cluster.get_json("-n", namespace, "pod", "store-0")["metadata"]["uid"]
    kube_cluster.kubectl(
        "-n", namespace, "delete", "pod", "store-0", "--wait=true", timeout_s=POD_TIMEOUT_S
    )

    def recreated_logs() -> list[str]:
        meta = kube_cluster.get_json("-n", namespace, "pod", "store-0")["metadata"]
        return logs_of_running_pod() if meta["uid"] != uid else []

    assert poll("store-0 to come back", recreated_logs, POD_TIMEOUT_S) == ["found", "persisted"]
