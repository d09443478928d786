"""Issue 7, test 1: `skaffold run -p local-cluster` on a real cluster, then every pod Ready,
and every container running as non-root on a read-only root filesystem, as the manifests say
(checked on the running pods: effective securityContext, `id -u`, a write to /)."""

from __future__ import annotations

from typing import Any

from tests.deploy.conftest import Deployed
from tests.deploy_support import poll, ready, wait_ready

# What overlays/local-cluster runs before the tests scale anything (replay and ingestion
# start at 0 replicas): workload name -> pods. Alertmanager and the development alert
# receiver come with the monitoring component (issue 23).
EXPECTED = {
    "dataflow": 2,
    "kafka": 1,
    "redis": 1,
    "prometheus": 1,
    "alertmanager": 1,
    "alert-receiver": 1,
}


def running_pods(deployed: Deployed) -> list[dict[str, Any]]:
    return [p for p in deployed.kube.pods() if p["status"].get("phase") == "Running"]


def test_every_pod_becomes_ready(deployed: Deployed) -> None:
    kube = deployed.kube
    poll(
        "topics Job succeeded",
        lambda: kube.json("get", "job", "redpanda-topics")["status"].get("succeeded"),
        600,
    )
    # The dataflow pods restart once or twice while the topics do not exist yet: wait until
    # every expected pod is running and Ready at the same time.
    expected = sorted(n for n, c in EXPECTED.items() for _ in range(c))

    def all_ready() -> list[dict[str, Any]] | None:
        pods = running_pods(deployed)
        names = sorted(p["metadata"]["labels"]["app.kubernetes.io/name"] for p in pods)
        return pods if names == expected and all(ready(p) for p in pods) else None

    pods = poll("every expected pod Running and Ready", all_ready, 600, 3)
    for name, count in EXPECTED.items():
        wait_ready(kube, f"app.kubernetes.io/name={name}", count, timeout_s=60)
    assert len(pods) == len(expected)


def effective_security(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """The pod's securityContext overridden by the container's, as the kubelet applies it."""
    return {**pod["spec"].get("securityContext", {}), **container.get("securityContext", {})}


def test_every_container_runs_as_non_root_on_a_read_only_root(deployed: Deployed) -> None:
    kube = deployed.kube
    checked = []
    for pod in running_pods(deployed):
        name = pod["metadata"]["name"]
        for container in pod["spec"]["containers"]:
            where = f"{name}/{container['name']}"
            sc = effective_security(pod, container)
            assert sc.get("runAsNonRoot") is True, where
            assert sc.get("runAsUser", 0) > 0, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            uid = kube.exec(name, container["name"], "id", "-u")
            assert uid.returncode == 0, f"{where}: {uid.stderr}"
            assert uid.stdout.strip() == str(sc["runAsUser"]), where
            write = kube.exec(name, container["name"], "sh", "-c", "echo x > /rootfs-write-probe")
            assert write.returncode != 0, f"{where}: the root filesystem is writable"
            assert "Read-only file system" in write.stderr, f"{where}: {write.stderr}"
            checked.append(where)
    assert len(checked) == sum(EXPECTED.values()), checked
