"""Who am I among how many: this pod's ordinal and its StatefulSet's replica count.

In a cluster, the ordinal comes from the pod name (`ingest-3` -> 3) and the count from
`spec.replicas` of the pod's own StatefulSet, followed through a Kubernetes watch on that
one object (list/watch with `fieldSelector=metadata.name=<name>`, which a Role limited by
`resourceNames` allows), so scaling re-shards every pod without a restart. Without a
cluster both come from settings (`SHARD_COUNT`, `SHARD_INDEX`).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_ORDINAL = re.compile(r"-(\d+)$")
_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def ordinal_from_name(pod_name: str) -> int:
    """The StatefulSet ordinal at the end of a pod name (`ingest-3` -> 3)."""
    match = _ORDINAL.search(pod_name.strip())
    if match is None:
        raise ValueError(f"pod name {pod_name!r} does not end in -<ordinal>")
    return int(match.group(1))


def in_cluster() -> bool:
    """Whether this process runs in a Kubernetes pod (the service env vars are set)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def pod_namespace(configured: str | None) -> str:
    """The configured namespace, else the service account's."""
    if configured:
        return configured
    return _NAMESPACE_FILE.read_text(encoding="utf-8").strip()


@dataclass(frozen=True, slots=True)
class WatchOutcome:
    """How a watch stream ended: the last resource version seen, and whether it must be
    restarted from a fresh list (410 Gone: that version is too old)."""

    resource_version: str | None
    relist: bool


def _field(obj: Any, *path: str) -> Any:
    """`obj.a.b` for kubernetes model objects, `obj["a"]["b"]` for dicts (raw events)."""
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return obj


def replicas_of(statefulset: Any) -> int:
    """`spec.replicas` (the API defaults an unset value to 1)."""
    value = _field(statefulset, "spec", "replicas")
    return 1 if value is None else int(value)


def follow_replicas(
    events: Iterable[Mapping[str, Any]],
    name: str,
    on_change: Callable[[int], None],
    current: int | None = None,
    resource_version: str | None = None,
) -> WatchOutcome:
    """Apply a watch event stream: call `on_change(replicas)` whenever the StatefulSet's
    `spec.replicas` differs from `current`. A deleted StatefulSet keeps the last count
    (the pods are going away too); an ERROR event ends the stream (410 asks to relist)."""
    for event in events:
        kind = event.get("type")
        obj = event.get("object")
        if kind == "ERROR":
            code = _field(obj, "code")
            log.warning("statefulset watch error", extra={"code": code})
            return WatchOutcome(None if code == 410 else resource_version, code == 410)
        resource_version = (
            _field(obj, "metadata", "resource_version")
            or _field(obj, "metadata", "resourceVersion")
            or resource_version
        )
        if kind == "BOOKMARK" or _field(obj, "metadata", "name") != name:
            continue
        if kind == "DELETED":
            log.warning("own statefulset deleted", extra={"statefulset": name})
            continue
        replicas = replicas_of(obj)
        if replicas != current:
            current = replicas
            on_change(replicas)
    return WatchOutcome(resource_version, False)


class StatefulSetWatcher:
    """A daemon thread following one StatefulSet's replica count through the API."""

    def __init__(
        self, name: str, namespace: str, on_change: Callable[[int], None], *, timeout_s: int = 300
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.on_change = on_change
        self.timeout_s = timeout_s
        self.replicas: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="statefulset-watch", daemon=True)

    def start(self) -> None:
        """Load the in-cluster config and start watching."""
        from kubernetes import config

        config.load_incluster_config()
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current watch request returns."""
        self._stop.set()

    def _changed(self, replicas: int) -> None:
        self.replicas = replicas
        self.on_change(replicas)

    def _read_once(self, api: Any) -> None:
        """One GET of the StatefulSet: the shard count stays known while watching fails
        (seen on a real cluster: kube-apiserver 1.34 on etcd 3.4 answers every watch with
        500 "RequestWatchProgress is disabled", and the pods never became ready)."""
        try:
            replicas = replicas_of(api.read_namespaced_stateful_set(self.name, self.namespace))
        except Exception as exc:  # unreachable or forbidden: the watch loop retries
            log.warning("statefulset read failed", extra={"error": str(exc)[:200]})
            return
        if replicas != self.replicas:
            self._changed(replicas)

    def _run(self) -> None:
        from kubernetes import client, watch

        api = client.AppsV1Api()
        version: str | None = None
        while not self._stop.is_set():
            try:
                stream = watch.Watch().stream(
                    api.list_namespaced_stateful_set,
                    self.namespace,
                    field_selector=f"metadata.name={self.name}",
                    resource_version=version,
                    timeout_seconds=self.timeout_s,
                    allow_watch_bookmarks=True,
                )
                outcome = follow_replicas(stream, self.name, self._changed, self.replicas, version)
                version = None if outcome.relist else outcome.resource_version
            except Exception as exc:  # API unreachable, 403, ...: retry
                log.warning("statefulset watch failed", extra={"error": str(exc)[:200]})
                version = None
                self._read_once(api)
                self._stop.wait(5.0)
                time.sleep(0)
