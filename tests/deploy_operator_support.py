"""Driving a `StockStream` on the real cluster in tests: the operated deploy
(`skaffold run -p local-cluster,operator-local-cluster`), the resource itself, its lifecycle
as the status reports it (watched, every change recorded), its dataflow pods and its replay
Jobs. Nothing is mocked: every call is the `kubectl` or `skaffold` a user would run."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.deploy_feed_support import Slice, wait_replay_job
from tests.deploy_support import Kube, poll, ready

NAMESPACE = "stockstream-operated"  # deploy/kustomize/operator/local-cluster/infra
OPERATOR_NAMESPACE = "stockstream-system"  # deploy/kustomize/operator/install
PROFILES = "local-cluster,operator-local-cluster"  # skaffold.yaml


CRD = "stockstreams.stockstream.io"


def drop_operated(
    kube: Kube, namespaces: Sequence[str], *, wait: bool, delete_crd: bool = False
) -> None:
    """Delete the operator, then `namespaces` with their StockStreams (and the CRD).

    The operator goes first and for good, then the StockStreams' finalizers, then the rest:
    removed while an operator still ran, a finalizer came back (kopf adds it to every live
    StockStream) and, its operator gone, held the StockStream, its namespace and the CRD in
    deletion for good (seen: the next run's `skaffold run` waited on the CRD and failed)."""
    kube.run(
        "delete",
        "namespace",
        OPERATOR_NAMESPACE,
        "--ignore-not-found",
        "--wait=true",
        namespaced=False,
        timeout_s=600,
    )
    listed = kube.run("get", "stockstreams", "-A", "-o", "json", namespaced=False, check=False)
    if listed.returncode == 0:
        for item in json.loads(listed.stdout)["items"]:
            meta = item["metadata"]
            if delete_crd or meta["namespace"] in namespaces:
                kube.run(
                    "patch",
                    "stockstream",
                    meta["name"],
                    "-n",
                    meta["namespace"],
                    "--type",
                    "merge",
                    "-p",
                    '{"metadata":{"finalizers":[]}}',
                    namespaced=False,
                    check=False,
                )
    if delete_crd:
        kube.run(
            "delete",
            "crd",
            CRD,
            "--ignore-not-found",
            f"--wait={str(wait).lower()}",
            namespaced=False,
            timeout_s=300,
        )
    for namespace in namespaces:
        kube.run(
            "delete",
            "namespace",
            namespace,
            "--ignore-not-found",
            f"--wait={str(wait).lower()}",
            namespaced=False,
            timeout_s=600,
        )


def undocumented_fields(crd: dict[str, Any], explain: Callable[[str], str]) -> list[str]:
    """The spec fields of the StockStream CRD whose description `kubectl explain` does not
    show: `explain(path)` is `kubectl explain <path>`'s output, called once per object of the
    spec (each lists its fields with their descriptions, wrapped)."""
    (version,) = crd["spec"]["versions"]
    missing: list[str] = []

    def words(text: str) -> str:
        return " ".join(text.split())

    def walk(path: str, node: dict[str, Any]) -> None:
        fields = node.get("properties") or {}
        if not fields:
            return
        shown = words(explain(path))
        for name, field_schema in fields.items():
            description = words(field_schema.get("description", ""))
            if not description or description[:60] not in shown:
                missing.append(f"{path}.{name}")
            walk(f"{path}.{name}", field_schema)

    walk("stockstream.spec", version["schema"]["openAPIV3Schema"]["properties"]["spec"])
    return missing


def dataflow_selector(name: str) -> str:
    return f"app.kubernetes.io/name=dataflow,app.kubernetes.io/instance={name}"


def stockstream_manifest(
    kube: Kube, name: str, image: str, replay: dict[str, Any], processes: int = 2
) -> dict[str, Any]:
    """A StockStream on the namespace's Kafka and Redis with `replay` as its feed
    (spec.feed.replay, e.g. `feed_replay(piece)`), as
    deploy/kustomize/operator/example/stockstream.yaml but for the local-cluster overlay
    (broker `kafka`, the generated `redis-auth-<hash>` Secret)."""
    (secret,) = [
        s["metadata"]["name"]
        for s in kube.json("get", "secrets")["items"]
        if s["metadata"]["name"].startswith("redis-auth-")
    ]
    return {
        "apiVersion": "stockstream.io/v1alpha1",
        "kind": "StockStream",
        "metadata": {"name": name, "namespace": kube.namespace},
        "spec": {
            "image": image,
            # Small CPU requests: found on the real cluster, the third process of a rescale
            # stayed Pending (`Insufficient cpu`) on the 2-core node that also runs the
            # plain-manifest deploy of the other cluster tests (250m per process by default).
            "dataflow": {
                "processes": processes,
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "768Mi"},
                },
            },
            "broker": {"bootstrapServers": "kafka:9092", "topic": "ticks", "partitions": 6},
            "redis": {
                "url": "redis://redis:6379/0",
                "username": "writer",
                "passwordSecret": {"name": secret, "key": "writer-password"},
            },
            "feed": {"provider": "replay", "replay": replay},
        },
    }


def feed_replay(piece: Slice) -> dict[str, Any]:
    """spec.feed.replay publishing `piece` once (services.replay as a Job)."""
    return {"from": piece.from_time, "limit": piece.limit, "speed": piece.speed, "loop": False}


def patch_spec(kube: Kube, name: str, spec: dict[str, Any]) -> None:
    kube.run("patch", "stockstream", name, "--type", "merge", "-p", json.dumps({"spec": spec}))


def status(kube: Kube, name: str) -> dict[str, Any]:
    return dict(kube.json("get", "stockstream", name).get("status") or {})


def wait_lifecycle(
    kube: Kube,
    name: str,
    lifecycle: str,
    ready_processes: int | None = None,
    timeout_s: float = 600,
) -> dict[str, Any]:
    """Wait until status.lifecycle is `lifecycle` for the current generation (and, if given,
    that many processes are ready, none terminating)."""

    def check() -> dict[str, Any] | None:
        obj = kube.json("get", "stockstream", name)
        st = obj.get("status") or {}
        if st.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        if st.get("lifecycle") != lifecycle:
            return None
        if ready_processes is not None:
            pods = [
                p
                for p in kube.pods(dataflow_selector(name))
                if not p["metadata"].get("deletionTimestamp")
            ]
            if len(pods) != ready_processes or not all(ready(p) for p in pods):
                return None
        return dict(st)

    return poll(f"StockStream {name} {lifecycle} ({ready_processes} ready)", check, timeout_s, 2)


def assert_no_restarts(kube: Kube, name: str) -> list[dict[str, Any]]:
    """Every dataflow container is on its first start; otherwise the failure carries the
    FIRST failing pod's previous log (the evidence of a crash loop)."""
    pods = kube.pods(dataflow_selector(name))
    restarted = [
        p
        for p in pods
        for c in p["status"].get("containerStatuses", [])
        if c.get("restartCount", 0) > 0
    ]
    if restarted:
        first = min(restarted, key=lambda p: p["metadata"]["creationTimestamp"])
        pod = first["metadata"]["name"]
        previous = kube.run("logs", pod, "--previous", "--tail=80", check=False).stdout
        names = [p["metadata"]["name"] for p in restarted]
        raise AssertionError(f"dataflow pods restarted: {names}; {pod} --previous:\n{previous}")
    return pods


def replay_job_of(kube: Kube, name: str, piece: Slice) -> str:
    """The name of the operator's replay Job publishing `piece` (it is named after its
    content, so found by its REPLAY_FROM)."""

    def find() -> str | None:
        jobs = kube.json(
            "get", "jobs", "-l", f"app.kubernetes.io/name=replay,app.kubernetes.io/instance={name}"
        )
        for job in jobs["items"]:
            (container,) = job["spec"]["template"]["spec"]["containers"]
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            if env.get("REPLAY_FROM") == piece.from_time:
                return str(job["metadata"]["name"])
        return None

    return poll(f"replay Job of slice {piece.name}", find, 300, 2)


def wait_slice_published(kube: Kube, name: str, piece: Slice) -> None:
    wait_replay_job(kube, replay_job_of(kube, name, piece), piece.limit)


@dataclass
class LifecycleWatch:
    """`kubectl get stockstream <name> -w`: every lifecycle the status passes through, in
    order (consecutive repeats collapsed), read by a thread until `stop()`."""

    kube: Kube
    name: str
    seen: list[str] = field(default_factory=list)
    _proc: subprocess.Popen[str] | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> LifecycleWatch:
        self._proc = subprocess.Popen(
            self.kube.argv(
                "get",
                "stockstream",
                self.name,
                "--watch",
                "-o",
                'jsonpath={.status.lifecycle}{"\\n"}',
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            state = line.strip()
            with self._lock:
                if state and (not self.seen or self.seen[-1] != state):
                    self.seen.append(state)

    def states(self) -> list[str]:
        with self._lock:
            return list(self.seen)

    def stop(self) -> list[str]:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._thread is not None:
            self._thread.join(10)
        return self.states()


def lifecycle_events(kube: Kube, name: str) -> set[tuple[str, str]]:
    """(from, to) of every `lifecycle A -> B` Event the operator posted for `name`."""
    events = kube.json(
        "get",
        "events",
        "--field-selector",
        f"involvedObject.kind=StockStream,involvedObject.name={name}",
    )["items"]
    pairs = set()
    for event in events:
        message = event.get("message", "")
        if message.startswith("lifecycle ") and " -> " in message:
            head = message.split(":", 1)[0].removeprefix("lifecycle ")
            before, after = head.split(" -> ", 1)
            pairs.add((before.strip(), after.strip()))
    return pairs


def node_pid_of(pod: str, namespace: str) -> int:
    """The host PID of `pod`'s main process on this machine (the project's single-node
    cluster runs its containers here): the process whose environment names the pod. Signals
    from inside a container cannot stop its PID 1 (the kernel ignores SIGSTOP sent to a
    namespace's init from within), so tests signal it from the node, as a hung process
    would look to the kubelet."""
    wanted = {f"POD_NAME={pod}".encode(), f"POD_NAMESPACE={namespace}".encode()}
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            entries = set(environ.read_bytes().split(b"\0"))
        except OSError:  # exited, or a kernel thread
            continue
        if wanted <= entries:
            found.append(int(environ.parent.name))
    assert found, f"no process of {namespace}/{pod} on this machine (an external cluster?)"
    return min(found)  # the container's main process started first (lowest PID)


def lease_holder(kube: Kube, namespace: str, lease: str = "stockstream-operator") -> str:
    spec = kube.json("get", "lease", lease, "-n", namespace).get("spec") or {}
    return str(spec.get("holderIdentity") or "")
