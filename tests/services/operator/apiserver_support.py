"""Helpers of the operator's tests against a real kube-apiserver (test_reconcile,
test_rollback_on_apiserver): lifecycles, conditions, Events, metrics."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

from confluent_kafka.admin import AdminClient

from tests.control_plane_support import sync_statefulset_pods
from tests.services.operator.conftest import Cluster, OperatorProcess, wait_for

Body = Callable[..., dict[str, Any]]
APPS = "apps/v1"


def lifecycle(cluster: Cluster, name: str, ns: str) -> str:
    ss = cluster.ss(name, ns) or {}
    return str((ss.get("status") or {}).get("lifecycle", ""))


def wait_lifecycle(
    cluster: Cluster, op: OperatorProcess, name: str, ns: str, state: str, sync: bool = False
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        if sync:
            sync_statefulset_pods(cluster.api, ns, f"{name}-dataflow")
        ss = cluster.ss(name, ns) or {}
        return ss if (ss.get("status") or {}).get("lifecycle") == state else None

    return wait_for(
        f"{name} lifecycle {state}", check, on_fail=lambda: f"{cluster.ss(name, ns)}\n{op.tail()}"
    )


def condition(ss: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in ss["status"]["conditions"] if c["type"] == type_)


def event_reasons(cluster: Cluster, name: str, ns: str) -> list[str]:
    return [e["reason"] for e in cluster.events(name, ns)]


def cluster_env(sts: dict[str, Any]) -> dict[str, str]:
    container = sts["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def topic_partitions(bootstrap: str, topic: str) -> int | None:
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    t = md.topics.get(topic)
    return None if t is None or t.error is not None else len(t.partitions)


def operator_metrics(operator: OperatorProcess) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics") as resp:
        return str(resp.read().decode())


def start_running(
    cluster: Cluster, operator: OperatorProcess, ns: str, body: dict[str, Any]
) -> dict[str, Any]:
    cluster.create(body, ns)
    name = body["metadata"]["name"]
    return wait_lifecycle(cluster, operator, name, ns, "Running", sync=True)
