"""A Kubernetes control plane alone for fast tests (envtest-style): Debian's etcd and the
kube-apiserver built by scripts/cluster/build-kubernetes.sh, on free loopback ports, with a
generated service-account key, a self-signed serving certificate (the API server makes it)
and static tokens: `admin` (system:masters) and `operator` (no groups: only the RBAC the
tests bind to it). Stopped by PID. No controllers run: tests play the StatefulSet controller
where they need pods (`sync_statefulset_pods`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

from stockstream.embedded._process import log_tail, spawn, terminate, wait_until
from stockstream.embedded.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
VERSION = os.environ.get("KUBERNETES_VERSION", "v1.34.3")


def kubernetes_bin() -> Path:
    """The built binaries (builds them, or waits for a running build, via the script);
    `$STOCKSTREAM_KUBE_BIN_DIR` names another folder with kube-apiserver and kubectl."""
    if os.environ.get("STOCKSTREAM_KUBE_BIN_DIR"):
        return Path(os.environ["STOCKSTREAM_KUBE_BIN_DIR"])
    subprocess.run([str(ROOT / "scripts/cluster/build-kubernetes.sh")], check=True)
    cache = Path(
        os.environ.get("STOCKSTREAM_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stockstream"
    )
    return cache / "kubernetes" / VERSION / "bin"


def etcd_binary() -> str:
    out = subprocess.run(
        [str(ROOT / "scripts/install-etcd.sh")], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


@dataclass
class ControlPlane:
    workdir: Path
    url: str
    admin_token: str
    operator_token: str
    procs: list[subprocess.Popen[bytes]]
    kubectl: Path

    @property
    def ca(self) -> Path:
        """The API server's self-signed serving certificate (and its CA), written to
        --cert-dir: what clients verify it with."""
        return self.workdir / "certs" / "apiserver.crt"

    def kubeconfig(self, token: str, path: Path) -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "test",
                    "clusters": [
                        {
                            "name": "test",
                            "cluster": {"server": self.url, "certificate-authority": str(self.ca)},
                        }
                    ],
                    "users": [{"name": "u", "user": {"token": token}}],
                    "contexts": [{"name": "test", "context": {"cluster": "test", "user": "u"}}],
                }
            )
        )
        return path

    def api(self, token: str | None = None) -> client.ApiClient:
        cfg = client.Configuration()
        cfg.host = self.url
        cfg.ssl_ca_cert = str(self.ca)
        cfg.api_key = {"authorization": f"Bearer {token or self.admin_token}"}
        return client.ApiClient(cfg)

    def kubectl_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        kc = self.kubeconfig(self.admin_token, self.workdir / "admin.kubeconfig")
        proc = subprocess.run(
            [str(self.kubectl), f"--kubeconfig={kc}", *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}"
            )
        return proc


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@contextmanager
def control_plane() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver on free loopback ports, stopped by PID at exit."""
    bin_dir = kubernetes_bin()
    etcd = etcd_binary()
    work = Path(tempfile.mkdtemp(prefix="stockstream-apiserver-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        client_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        procs.append(
            spawn(
                [
                    etcd,
                    "--data-dir",
                    str(work / "etcd"),
                    "--name",
                    "test",
                    "--listen-client-urls",
                    etcd_url,
                    "--advertise-client-urls",
                    etcd_url,
                    "--listen-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                    "--initial-advertise-peer-urls",
                    f"http://127.0.0.1:{peer_port}",
                    "--initial-cluster",
                    f"test=http://127.0.0.1:{peer_port}",
                    "--unsafe-no-fsync",
                ],
                work / "etcd.log",
                work,
            )
        )
        _openssl("genrsa", "-out", str(work / "sa.key"), "2048")
        _openssl("rsa", "-in", str(work / "sa.key"), "-pubout", "-out", str(work / "sa.pub"))
        admin, operator = os.urandom(16).hex(), os.urandom(16).hex()
        (work / "tokens.csv").write_text(
            f'{admin},admin,1,"system:masters"\n{operator},operator,2\n'
        )
        procs.append(
            spawn(
                [
                    str(bin_dir / "kube-apiserver"),
                    f"--etcd-servers={etcd_url}",
                    "--bind-address=127.0.0.1",
                    "--advertise-address=127.0.0.1",
                    f"--secure-port={api_port}",
                    f"--cert-dir={work / 'certs'}",
                    f"--token-auth-file={work / 'tokens.csv'}",
                    "--authorization-mode=RBAC",
                    "--service-cluster-ip-range=10.96.0.0/24",
                    f"--service-account-key-file={work / 'sa.pub'}",
                    f"--service-account-signing-key-file={work / 'sa.key'}",
                    "--service-account-issuer=https://kubernetes.default.svc",
                    # no controller-manager: no default ServiceAccount to admit pods with
                    "--disable-admission-plugins=ServiceAccount",
                    "--enable-priority-and-fairness=false",
                ],
                work / "apiserver.log",
                work,
            )
        )
        plane = ControlPlane(
            work, f"https://127.0.0.1:{api_port}", admin, operator, procs, bin_dir / "kubectl"
        )
        version = client.VersionApi(plane.api())

        def up() -> bool:
            try:
                version.get_code()
                client.CoreV1Api(plane.api()).read_namespace("default")
            except Exception:  # not serving yet
                return False
            return True

        if not wait_until(
            up, timeout=180, interval=0.5, alive=lambda: all(p.poll() is None for p in procs)
        ):
            raise RuntimeError(
                "kube-apiserver did not come up:\n"
                + log_tail(work / "etcd.log")
                + "\n"
                + log_tail(work / "apiserver.log")
            )
        yield plane
    finally:
        for proc in reversed(procs):
            terminate(proc, timeout=20)
        shutil.rmtree(work, ignore_errors=True)


def sync_statefulset_pods(
    api: client.ApiClient, namespace: str, name: str, ready: bool = True
) -> int:
    """Play the StatefulSet controller (and kubelet) once: pods `<name>-<i>` for i below
    spec.replicas exist from the template with their recovery PVCs (Ready if `ready`), the
    others are deleted. Returns the number of pods that exist afterwards."""
    dyn = DynamicClient(api)
    sts_api = dyn.resources.get(api_version="apps/v1", kind="StatefulSet")
    pods = dyn.resources.get(api_version="v1", kind="Pod")
    claims = dyn.resources.get(api_version="v1", kind="PersistentVolumeClaim")
    try:
        sts = sts_api.get(name=name, namespace=namespace).to_dict()
    except NotFoundError:
        return 0
    replicas = int(sts["spec"].get("replicas") or 0)
    template = sts["spec"]["template"]
    selector = ",".join(f"{k}={v}" for k, v in sts["spec"]["selector"]["matchLabels"].items())
    existing = {
        p.metadata.name for p in pods.get(namespace=namespace, label_selector=selector).items
    }
    for i in range(replicas):
        pod_name = f"{name}-{i}"
        if pod_name not in existing:
            spec = dict(template["spec"])
            volumes = list(spec.get("volumes") or [])
            for vct in sts["spec"].get("volumeClaimTemplates") or []:
                claim = f"{vct['metadata']['name']}-{pod_name}"
                volumes.append(
                    {"name": vct["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim}}
                )
                with contextlib.suppress(ConflictError):
                    claims.create(
                        namespace=namespace,
                        body={
                            "apiVersion": "v1",
                            "kind": "PersistentVolumeClaim",
                            "metadata": {
                                "name": claim,
                                "labels": vct["metadata"].get("labels", {}),
                            },
                            "spec": vct["spec"],
                        },
                    )
            spec["volumes"] = volumes
            pods.create(
                namespace=namespace,
                body={
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {**template["metadata"], "name": pod_name},
                    "spec": spec,
                },
            )
        if ready:
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            pods.status.patch(
                name=pod_name,
                namespace=namespace,
                content_type="application/merge-patch+json",
                body={
                    "status": {
                        "phase": "Running",
                        "conditions": [
                            {"type": "Ready", "status": "True", "lastTransitionTime": now}
                        ],
                    }
                },
            )
    for pod_name in existing:
        if int(pod_name.rsplit("-", 1)[1]) >= replicas:
            pods.delete(name=pod_name, namespace=namespace, body={"gracePeriodSeconds": 0})
    return len(pods.get(namespace=namespace, label_selector=selector).items)
