"""Safe upgrades against a real kube-apiserver and Redis: a change that lands no fresh window
in time is rolled back to the last stable spec; `restartNonce` restarts without a change.
The test plays the StatefulSet controller and the dataflow (it advances `window:1m` while
processes of a working image are ready)."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

import redis as redis_lib

from tests.control_plane_support import sync_statefulset_pods
from tests.services.operator.apiserver_support import (
    APPS,
    condition,
    event_reasons,
    start_running,
)
from tests.services.operator.conftest import Cluster, OperatorProcess, wait_for

Body = Callable[..., dict[str, Any]]
BROKEN = "stockstream:broken"


def image(sts: dict[str, Any]) -> str:
    return str(sts["spec"]["template"]["spec"]["containers"][0]["image"])


class Pipeline:
    """The StatefulSet controller and a dataflow that lands a window at every step, unless
    its image is BROKEN (its processes never become ready)."""

    def __init__(self, cluster: Cluster, namespace: str, name: str, r: redis_lib.Redis) -> None:
        self.cluster, self.namespace, self.name, self.r = cluster, namespace, name, r
        self.end = 1638322800

    def step(self) -> dict[str, Any]:
        sts = self.cluster.get(APPS, "StatefulSet", f"{self.name}-dataflow", self.namespace)
        working = sts is not None and image(sts) != BROKEN
        sync_statefulset_pods(
            self.cluster.api, self.namespace, f"{self.name}-dataflow", ready=working
        )
        if working and sts and sts["spec"]["replicas"]:
            self.end += 10
            self.r.hset("window:1m", mapping={"end": self.end})
        return self.cluster.ss(self.name, self.namespace) or {}

    def until(
        self, what: str, check: Callable[[dict[str, Any]], bool], op: OperatorProcess
    ) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            ss = self.step()
            return ss if check(ss) else None

        return wait_for(what, done, timeout_s=180, on_fail=op.tail)


def status(ss: dict[str, Any]) -> dict[str, Any]:
    return dict(ss.get("status") or {})


def metric(op: OperatorProcess, name: str, labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics") as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith(f"{name}{{") and labels in line:
                return float(line.rsplit(" ", 1)[1])
    return float("nan")


def test_a_bad_image_is_rolled_back_and_the_next_edit_is_tried(
    cluster: Cluster,
    operator: OperatorProcess,
    namespace: str,
    stockstream_body: Body,
    op_redis: Any,
) -> None:
    r = redis_lib.Redis.from_url(op_redis.url.replace("/0", "/3"))
    r.flushdb()
    body = stockstream_body(
        "rb1",
        redis={"url": f"redis://127.0.0.1:{op_redis.port}/3"},
        rollback={"readinessTimeoutSeconds": 30},  # a restart fits, loaded
        monitoring={"staleAfterSeconds": 60},
    )
    start_running(cluster, operator, namespace, body)
    flow = Pipeline(cluster, namespace, "rb1", r)
    first = flow.until(
        "generation 1 stable",
        lambda ss: (
            (status(ss).get("stable") or {}).get("generation") == 1
            and "advancedAt" in (status(ss).get("leaderboards") or {})
        ),
        operator,
    )
    assert condition(first, "RolledBack")["status"] == "False"

    cluster.patch_ss("rb1", namespace, {"image": BROKEN})
    rolled = flow.until(
        "RolledBack", lambda ss: status(ss).get("lifecycle") == "RolledBack", operator
    )
    st = status(rolled)
    assert (st["rollback"]["generation"], st["rollback"]["toGeneration"]) == (2, 1)
    assert "landed no fresh 1m window within 30 s" in st["rollback"]["reason"]
    cond = condition(rolled, "RolledBack")
    assert (cond["status"], cond["reason"]) == ("True", "ReadinessTimeout")
    assert rolled["spec"]["image"] == BROKEN  # the user's spec is kept as written
    sts = cluster.get(APPS, "StatefulSet", "rb1-dataflow", namespace)
    assert sts is not None and image(sts) == "stockstream:test"
    reasons = event_reasons(cluster, "rb1", namespace)
    assert "RolledBack" in reasons and reasons.index("RolledBack") > reasons.index("Upgrading")
    assert (
        metric(
            operator, "stockstream_operator_rollbacks_total", f'name="rb1",namespace="{namespace}"'
        )
        == 1.0
    )
    table = cluster.plane.kubectl_run("get", "sst", "rb1", "-n", namespace).stdout
    assert "RolledBack" in table, table

    # it stays rolled back (no second restart) until the spec is edited
    for _ in range(10):
        flow.step()
    assert status(cluster.ss("rb1", namespace) or {})["lifecycle"] == "RolledBack"

    cluster.patch_ss("rb1", namespace, {"image": "stockstream:v2"})
    fixed = flow.until(
        "generation 3 stable",
        lambda ss: (status(ss).get("stable") or {}).get("generation") == 3,
        operator,
    )
    assert status(fixed)["lifecycle"] == "Running" and "rollback" not in status(fixed)
    assert condition(fixed, "RolledBack")["status"] == "False"
    sts = cluster.get(APPS, "StatefulSet", "rb1-dataflow", namespace)
    assert sts is not None and image(sts) == "stockstream:v2"


def test_a_new_restart_nonce_restarts_every_process_once(
    cluster: Cluster, operator: OperatorProcess, namespace: str, stockstream_body: Body
) -> None:
    start_running(cluster, operator, namespace, stockstream_body("rb2"))
    dataflow = "app.kubernetes.io/name=dataflow,app.kubernetes.io/instance=rb2"
    before = {p["metadata"]["uid"] for p in cluster.objs("v1", "Pod", namespace, dataflow)}
    cluster.patch_ss("rb2", namespace, {"restartNonce": 1})

    def restarted() -> dict[str, Any] | None:
        sync_statefulset_pods(cluster.api, namespace, "rb2-dataflow")
        ss = cluster.ss("rb2", namespace) or {}
        st = status(ss)
        return (
            ss if st.get("lifecycle") == "Running" and st.get("observedGeneration") == 2 else None
        )

    wait_for("Running after the restart", restarted, on_fail=operator.tail)
    pods = cluster.objs("v1", "Pod", namespace, dataflow)
    assert pods and not before & {p["metadata"]["uid"] for p in pods}
    assert {p["metadata"]["annotations"]["stockstream.io/restart-nonce"] for p in pods} == {"1"}
    reasons = event_reasons(cluster, "rb2", namespace)
    assert reasons[reasons.index("Upgrading") :].count("StoppingProcesses") == 1
