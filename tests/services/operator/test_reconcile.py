"""The operator against a real kube-apiserver: owned objects, lifecycle, coordinated
restarts through the scale subresource, suspend, status and Events, bad resources, topics,
no update storm, delete. The tests play the StatefulSet controller (`sync_statefulset_pods`)
since no controller or node runs in the fast tier."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stockstream.embedded.topics import create_topic
from tests.control_plane_support import sync_statefulset_pods
from tests.services.operator.apiserver_support import (
    APPS,
    Body,
    cluster_env,
    condition,
    event_reasons,
    operator_metrics,
    start_running,
    topic_partitions,
    wait_lifecycle,
)
from tests.services.operator.conftest import INTERVAL_S, Cluster, OperatorProcess, wait_for


def test_create_reconciles_owned_objects_status_and_events(
    cluster: Cluster,
    operator: OperatorProcess,
    namespace: str,
    stockstream_body: Body,
    kafka_bootstrap: str,
) -> None:
    body = stockstream_body("p1")
    topic = body["spec"]["broker"]["topic"]
    created = cluster.create(body, namespace)
    uid = created["metadata"]["uid"]
    deploying = wait_lifecycle(cluster, operator, "p1", namespace, "Deploying")
    assert condition(deploying, "Progressing")["status"] == "True"
    assert condition(deploying, "Ready")["status"] == "False"

    expected = [
        (APPS, "StatefulSet", "p1-dataflow"),
        ("v1", "Service", "p1-dataflow-headless"),
        ("v1", "Service", "p1-dataflow-metrics"),
        ("policy/v1", "PodDisruptionBudget", "p1-dataflow"),
        (APPS, "StatefulSet", "p1-ingest"),
        ("v1", "Service", "p1-ingest"),
        ("v1", "ServiceAccount", "p1-ingest"),
        ("rbac.authorization.k8s.io/v1", "Role", "p1-ingest"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", "p1-ingest"),
        ("v1", "ConfigMap", "p1-symbols"),
    ]
    for api_version, kind, obj_name in expected:

        def exists(a: str = api_version, k: str = kind, n: str = obj_name) -> dict[str, Any] | None:
            return cluster.get(a, k, n, namespace)

        obj = wait_for(f"{kind} {obj_name}", exists)
        (ref,) = obj["metadata"]["ownerReferences"]
        assert (ref["uid"], ref["kind"], ref["controller"]) == (uid, "StockStream", True), kind
    sts = cluster.get(APPS, "StatefulSet", "p1-dataflow", namespace)
    assert sts is not None
    assert sts["spec"]["replicas"] == 2 and cluster_env(sts)["DATAFLOW_REPLICAS"] == "2"
    assert sts["spec"]["updateStrategy"]["type"] == "OnDelete"
    cm_name = sts["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"]
    cm = cluster.get("v1", "ConfigMap", cm_name, namespace)
    assert cm is not None and cm["data"]["TICKS_TOPIC"] == topic and cm["immutable"] is True
    assert topic_partitions(kafka_bootstrap, topic) == 4

    running = wait_lifecycle(cluster, operator, "p1", namespace, "Running", sync=True)
    status = running["status"]
    assert status["observedGeneration"] == running["metadata"]["generation"]
    assert status["processes"] == "2/2" and status["readyProcesses"] == 2
    assert condition(running, "Ready")["status"] == "True"
    assert condition(running, "Progressing")["reason"] == "Stable"
    assert condition(running, "Degraded")["status"] == "False"

    def running_event() -> list[str] | None:
        reasons = event_reasons(cluster, "p1", namespace)
        return reasons if "Running" in reasons else None

    reasons = wait_for("Running event", running_event)
    assert {"TopicCreated", "CreatingCluster", "Deploying", "Running"} <= set(reasons)
    table = cluster.plane.kubectl_run("get", "stockstream", "p1", "-n", namespace).stdout
    assert "2/2" in table and "Running" in table, table
    metrics = operator_metrics(operator)
    assert (
        f'stockstream_operator_reconciles_total{{name="p1",namespace="{namespace}",result="ok"}}'
    ) in metrics
    assert (
        f'stockstream_operator_reconciles_total{{name="p1",namespace="{namespace}",result="error"}}'
    ) in metrics  # exported before any failure
    assert (
        f'stockstream_operator_rollbacks_total{{name="p1",namespace="{namespace}"}} 0.0'
    ) in metrics
    assert (
        f'stockstream_operator_reconcile_duration_seconds_count{{name="p1",'
        f'namespace="{namespace}"}}'
    ) in metrics
    assert (
        f'stockstream_operator_lifecycle{{lifecycle="Running",name="p1",'
        f'namespace="{namespace}"}} 1.0'
    ) in metrics


def test_scale_subresource_is_a_coordinated_restart(
    cluster: Cluster, operator: OperatorProcess, namespace: str, stockstream_body: Body
) -> None:
    start_running(cluster, operator, namespace, stockstream_body("p2"))
    cluster.plane.kubectl_run("scale", "stockstream/p2", "--replicas=3", "-n", namespace)

    # Stop phase: replicas 0 with the OLD template while any old process exists.
    wait_lifecycle(cluster, operator, "p2", namespace, "Rescaling")
    stopped = wait_for(
        "replicas 0",
        lambda: (
            (s := cluster.get(APPS, "StatefulSet", "p2-dataflow", namespace))
            and s["spec"]["replicas"] == 0
            and s
        ),
    )
    assert cluster_env(stopped)["DATAFLOW_REPLICAS"] == "2"
    for _ in range(int(3 / INTERVAL_S) + 1):  # pods still there: the operator must wait
        sts = cluster.get(APPS, "StatefulSet", "p2-dataflow", namespace)
        assert sts is not None and sts["spec"]["replicas"] == 0
        assert cluster_env(sts)["DATAFLOW_REPLICAS"] == "2"
        time.sleep(INTERVAL_S)

    # Every sighting of the StatefulSet from here on: a running size equals its cluster size.
    def invariant_then_running() -> dict[str, Any] | None:
        sync_statefulset_pods(cluster.api, namespace, "p2-dataflow")
        sts = cluster.get(APPS, "StatefulSet", "p2-dataflow", namespace)
        assert sts is not None
        if sts["spec"]["replicas"]:
            assert cluster_env(sts)["DATAFLOW_REPLICAS"] == str(sts["spec"]["replicas"])
        ss = cluster.ss("p2", namespace) or {}
        return ss if ss.get("status", {}).get("lifecycle") == "Running" else None

    running = wait_for("Running after rescale", invariant_then_running, on_fail=operator.tail)
    assert running["status"]["processes"] == "3/3"
    assert running["spec"]["dataflow"]["processes"] == 3
    sts = cluster.get(APPS, "StatefulSet", "p2-dataflow", namespace)
    assert sts is not None and cluster_env(sts)["DATAFLOW_REPLICAS"] == "3"
    scale = cluster.plane.kubectl_run(
        "get",
        "--raw",
        f"/apis/stockstream.io/v1alpha1/namespaces/{namespace}/stockstreams/p2/scale",
    ).stdout
    assert '"replicas":3' in scale.replace(" ", "")
    reasons = event_reasons(cluster, "p2", namespace)
    i = reasons.index("Rescaling")
    assert "StoppingProcesses" in reasons and "StartingProcesses" in reasons[i:]
    assert reasons[-1] == "Running" or "Running" in reasons[i:]


def test_suspend_stops_everything_and_keeps_volumes_then_resumes(
    cluster: Cluster, operator: OperatorProcess, namespace: str, stockstream_body: Body
) -> None:
    start_running(cluster, operator, namespace, stockstream_body("p3"))
    pvcs = {p["metadata"]["name"] for p in cluster.objs("v1", "PersistentVolumeClaim", namespace)}
    assert pvcs == {"recovery-p3-dataflow-0", "recovery-p3-dataflow-1"}
    cluster.patch_ss("p3", namespace, {"suspend": True})
    wait_lifecycle(cluster, operator, "p3", namespace, "Suspended")

    def all_stopped() -> dict[str, Any] | None:
        sync_statefulset_pods(cluster.api, namespace, "p3-dataflow")
        ss = cluster.ss("p3", namespace) or {}
        return (
            ss
            if ss["status"]["processes"] == "0/0" and ss["status"]["message"] == "Suspended"
            else None
        )

    suspended = wait_for("suspended, no process left", all_stopped, on_fail=operator.tail)
    assert suspended["status"]["lifecycle"] == "Suspended"
    assert condition(suspended, "Progressing")["reason"] == "Suspended"
    sts = cluster.get(APPS, "StatefulSet", "p3-dataflow", namespace)
    ingest = cluster.get(APPS, "StatefulSet", "p3-ingest", namespace)
    assert sts is not None and ingest is not None
    assert sts["spec"]["replicas"] == 0 and ingest["spec"]["replicas"] == 0
    assert {
        p["metadata"]["name"] for p in cluster.objs("v1", "PersistentVolumeClaim", namespace)
    } == pvcs
    cluster.patch_ss("p3", namespace, {"suspend": False})
    wait_lifecycle(cluster, operator, "p3", namespace, "Running", sync=True)
    reasons = event_reasons(cluster, "p3", namespace)
    assert reasons.count("Suspended") == 1 and reasons.count("Running") == 2


def test_missing_secret_fails_clearly_and_creates_nothing(
    cluster: Cluster, operator: OperatorProcess, namespace: str, stockstream_body: Body
) -> None:
    body = stockstream_body("p4", redis={"passwordSecret": {"name": "nope"}})
    cluster.create(body, namespace)
    failed = wait_lifecycle(cluster, operator, "p4", namespace, "Failed")
    degraded = condition(failed, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "InvalidSpec"
    assert "Secret 'nope' with key 'password' not found" in degraded["message"]
    events = wait_for(
        "Warning event",
        lambda: [e for e in cluster.events("p4", namespace) if e["type"] == "Warning"],
    )
    assert "'nope'" in events[0]["message"]
    for api_version, kind in [(APPS, "StatefulSet"), ("v1", "Service"), ("v1", "ConfigMap")]:
        assert cluster.objs(api_version, kind, namespace, "app.kubernetes.io/instance=p4") == [], (
            kind
        )
    cluster.patch_ss("p4", namespace, {"redis": {"passwordSecret": {"name": "redis-auth"}}})
    wait_lifecycle(cluster, operator, "p4", namespace, "Running", sync=True)


def test_topic_partitions_lowering_refused_raising_needs_confirmation(
    cluster: Cluster,
    operator: OperatorProcess,
    namespace: str,
    stockstream_body: Body,
    kafka_bootstrap: str,
) -> None:
    body = stockstream_body("p5", broker={"partitions": 2})
    topic = body["spec"]["broker"]["topic"]
    create_topic(kafka_bootstrap, topic, 3)
    cluster.create(body, namespace)
    failed = wait_lifecycle(cluster, operator, "p5", namespace, "Failed")
    assert condition(failed, "Degraded")["reason"] == "TopicPartitionsRefused"
    assert "lowering to 2 is refused" in failed["status"]["message"]
    assert cluster.get(APPS, "StatefulSet", "p5-dataflow", namespace) is None

    cluster.patch_ss("p5", namespace, {"broker": {"partitions": 4}})
    wait_for(
        "raise refused",
        lambda: (
            "allowPartitionIncrease"
            in ((cluster.ss("p5", namespace) or {}).get("status", {}).get("message", ""))
        ),
    )
    assert topic_partitions(kafka_bootstrap, topic) == 3
    cluster.patch_ss("p5", namespace, {"broker": {"allowPartitionIncrease": True}})
    wait_lifecycle(cluster, operator, "p5", namespace, "Running", sync=True)
    assert topic_partitions(kafka_bootstrap, topic) == 4
    assert "TopicPartitionsIncreased" in event_reasons(cluster, "p5", namespace)


def snapshot(cluster: Cluster, ns: str) -> dict[tuple[str, str], str]:
    """resourceVersion of every object in the namespace the operator could write."""
    out: dict[tuple[str, str], str] = {}
    for api_version, kind in [
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        (APPS, "StatefulSet"),
        (APPS, "Deployment"),
        ("batch/v1", "Job"),
        ("policy/v1", "PodDisruptionBudget"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("stockstream.io/v1alpha1", "StockStream"),
    ]:
        for obj in cluster.objs(api_version, kind, ns):
            out[(kind, obj["metadata"]["name"])] = obj["metadata"]["resourceVersion"]
    return out


def test_spec_change_reconciles_once_and_no_update_storm(
    cluster: Cluster, operator: OperatorProcess, namespace: str, stockstream_body: Body
) -> None:
    start_running(cluster, operator, namespace, stockstream_body("p6"))
    time.sleep(3 * INTERVAL_S)  # the Running status and its Event settle
    before = snapshot(cluster, namespace)
    time.sleep(8 * INTERVAL_S)  # eight reconcile passes
    assert snapshot(cluster, namespace) == before, "writes while nothing changed"

    dataflow = cluster.get(APPS, "StatefulSet", "p6-dataflow", namespace)
    ingest = cluster.get(APPS, "StatefulSet", "p6-ingest", namespace)
    assert dataflow is not None and ingest is not None
    changed = cluster.patch_ss("p6", namespace, {"feed": {"replicas": 2}})
    wait_for(
        "observedGeneration",
        lambda: (
            (cluster.ss("p6", namespace) or {}).get("status", {}).get("observedGeneration")
            == changed["metadata"]["generation"]
        ),
    )
    time.sleep(8 * INTERVAL_S)
    ingest_after = cluster.get(APPS, "StatefulSet", "p6-ingest", namespace)
    dataflow_after = cluster.get(APPS, "StatefulSet", "p6-dataflow", namespace)
    assert ingest_after is not None and dataflow_after is not None
    assert ingest_after["spec"]["replicas"] == 2
    assert ingest_after["metadata"]["generation"] == ingest["metadata"]["generation"] + 1
    assert (
        dataflow_after["metadata"]["resourceVersion"] == dataflow["metadata"]["resourceVersion"]
    ), "a feed change must not touch the dataflow"
    settled = snapshot(cluster, namespace)
    time.sleep(8 * INTERVAL_S)
    assert snapshot(cluster, namespace) == settled, "writes after the change settled"


def test_leaderboard_freshness_and_degraded_when_stale(
    cluster: Cluster,
    operator: OperatorProcess,
    namespace: str,
    stockstream_body: Body,
    op_redis: Any,
) -> None:
    import redis as redis_lib

    r = redis_lib.Redis.from_url(op_redis.url.replace("/0", "/2"))
    r.flushdb()
    r.hset("window:1m", mapping={"end": 1638322800})
    r.hset("window:5m", mapping={"end": 1638322800})
    # an ACL user that may only read the window hashes, as the operator's credentials
    r.acl_setuser(
        "p7reader",
        enabled=True,
        passwords=["+p7-secret"],
        keys=["window:*"],
        commands=["+ping", "+select", "+hget"],
        reset=True,
    )
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "p7-redis"},
            "stringData": {"reader-password": "p7-secret"},
        },
        namespace,
    )
    body = stockstream_body(
        "p7",
        redis={
            "url": f"redis://127.0.0.1:{op_redis.port}/2",
            "username": "p7reader",
            "passwordSecret": {"name": "p7-redis", "key": "reader-password"},
        },
        monitoring={"staleAfterSeconds": 10},
    )
    running = start_running(cluster, operator, namespace, body)
    boards = wait_for(
        "leaderboards",
        lambda: (cluster.ss("p7", namespace) or {}).get("status", {}).get("leaderboards"),
    )
    assert boards["latest1mWindowEnd"] == "2021-12-01T01:40:00+00:00"
    assert {w["name"] for w in boards["windows"]} == {"1m", "5m"}
    assert running is not None
    stale = wait_for(
        "Degraded",
        lambda: (
            (ss := cluster.ss("p7", namespace))
            and condition(ss, "Degraded")["status"] == "True"
            and ss
        ),
        timeout_s=120,
    )
    degraded = condition(stale, "Degraded")
    assert degraded["reason"] == "LeaderboardsStale"
    assert "has not advanced since" in degraded["message"]
    assert "check the feed" in degraded["message"]
    r.hset("window:1m", mapping={"end": 1638322810})
    fresh = wait_for(
        "not Degraded",
        lambda: (
            (ss := cluster.ss("p7", namespace))
            and condition(ss, "Degraded")["status"] == "False"
            and ss
        ),
    )
    assert fresh["status"]["leaderboards"]["latest1mWindowEnd"] == "2021-12-01T01:40:10+00:00"

    def recovered() -> list[str] | None:
        reasons = event_reasons(cluster, "p7", namespace)
        return reasons if "Recovered" in reasons else None

    reasons = wait_for("Recovered event", recovered)
    assert "LeaderboardsStale" in reasons
    table = cluster.plane.kubectl_run("get", "sst", "p7", "-n", namespace).stdout
    assert "2021-12-01T01:40:10" in table, table


@pytest.mark.parametrize("delete_volumes", [False, True])
def test_delete_while_rescaling_leaves_only_the_recovery_volumes(
    cluster: Cluster,
    operator: OperatorProcess,
    namespace: str,
    stockstream_body: Body,
    delete_volumes: bool,
) -> None:
    body = stockstream_body("p8", dataflow={"recovery": {"deleteVolumesOnDelete": delete_volumes}})
    start_running(cluster, operator, namespace, body)
    cluster.patch_ss("p8", namespace, {"dataflow": {"processes": 3}})
    wait_lifecycle(cluster, operator, "p8", namespace, "Rescaling")  # pods held: stopping
    cluster.res("stockstream.io/v1alpha1", "StockStream").delete(name="p8", namespace=namespace)
    wait_for("resource gone", lambda: cluster.ss("p8", namespace) is None, on_fail=operator.tail)
    sel = "app.kubernetes.io/instance=p8"
    for api_version, kind in [
        (APPS, "StatefulSet"),
        ("v1", "Service"),
        ("v1", "ConfigMap"),
        ("v1", "ServiceAccount"),
        ("policy/v1", "PodDisruptionBudget"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ]:
        assert cluster.objs(api_version, kind, namespace, sel) == [], kind
    # No controller removes the pvc-protection finalizer here: a deleted claim stays with a
    # deletionTimestamp (a real cluster removes it once no pod uses it).
    pvcs = cluster.objs("v1", "PersistentVolumeClaim", namespace)
    assert len(pvcs) == 2
    deleting = [bool(p["metadata"].get("deletionTimestamp")) for p in pvcs]
    assert deleting == [delete_volumes] * 2
    # its metrics go with it (the daemon stops once the delete handler is done)
    wait_for(
        "p8's metrics removed",
        lambda: f'name="p8",namespace="{namespace}"' not in (operator_metrics(operator)) or None,
        on_fail=operator.tail,
    )


def test_new_image_is_an_upgrade_that_replaces_every_process_at_once(
    cluster: Cluster, operator: OperatorProcess, namespace: str, stockstream_body: Body
) -> None:
    start_running(cluster, operator, namespace, stockstream_body("p9"))
    old = cluster.get(APPS, "StatefulSet", "p9-dataflow", namespace)
    assert old is not None
    cluster.patch_ss("p9", namespace, {"image": "stockstream:v2"})
    wait_lifecycle(cluster, operator, "p9", namespace, "Upgrading")

    def image(sts: dict[str, Any]) -> str:
        return str(sts["spec"]["template"]["spec"]["containers"][0]["image"])

    def upgraded() -> dict[str, Any] | None:
        sts = cluster.get(APPS, "StatefulSet", "p9-dataflow", namespace)
        assert sts is not None
        pods = cluster.objs("v1", "Pod", namespace, "app.kubernetes.io/name=dataflow")
        if sts["spec"]["replicas"]:  # running again: only new-version processes exist
            assert image(sts) == "stockstream:v2"
            assert {p["spec"]["containers"][0]["image"] for p in pods} <= {"stockstream:v2"}
        sync_statefulset_pods(cluster.api, namespace, "p9-dataflow")
        ss = cluster.ss("p9", namespace) or {}
        return ss if ss.get("status", {}).get("lifecycle") == "Running" else None

    wait_for("Running after the upgrade", upgraded, on_fail=operator.tail)
    new = cluster.get(APPS, "StatefulSet", "p9-dataflow", namespace)
    assert new is not None and image(new) == "stockstream:v2"
    assert (
        new["metadata"]["annotations"]["stockstream.io/cluster-hash"]
        != old["metadata"]["annotations"]["stockstream.io/cluster-hash"]
    )
    reasons = event_reasons(cluster, "p9", namespace)
    assert reasons[reasons.index("Upgrading") :].count("StoppingProcesses") == 1


def test_operator_restart_resumes_without_writes_or_events(
    cluster: Cluster, operator: OperatorProcess, namespace: str, stockstream_body: Body
) -> None:
    """Level-based and idempotent: a new operator process finds everything as it should be
    and changes nothing (the single-replica design relies on this)."""
    start_running(cluster, operator, namespace, stockstream_body("p10"))
    time.sleep(3 * INTERVAL_S)
    before = snapshot(cluster, namespace)
    events = len(cluster.events("p10", namespace))
    operator.restart()
    time.sleep(10 * INTERVAL_S)  # startup plus several passes of the new process
    assert operator.proc.poll() is None, operator.tail()
    assert snapshot(cluster, namespace) == before, operator.tail()
    assert len(cluster.events("p10", namespace)) == events
    # and it still acts: a suspend after the restart is carried out
    cluster.patch_ss("p10", namespace, {"suspend": True})
    wait_lifecycle(cluster, operator, "p10", namespace, "Suspended", sync=True)


def test_a_crashing_process_makes_it_degraded_with_the_reason(
    cluster: Cluster, operator: OperatorProcess, namespace: str, stockstream_body: Body
) -> None:
    start_running(cluster, operator, namespace, stockstream_body("p11"))
    pods = cluster.res("v1", "Pod")
    pods.status.patch(
        name="p11-dataflow-1",
        namespace=namespace,
        content_type="application/merge-patch+json",
        body={
            "status": {
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {
                        "name": "dataflow",
                        "image": "stockstream:test",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 3,
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    }
                ],
            }
        },
    )
    degraded = wait_for(
        "Degraded",
        lambda: (
            (ss := cluster.ss("p11", namespace))
            and condition(ss, "Degraded")["status"] == "True"
            and ss
        ),
        on_fail=operator.tail,
    )
    cond = condition(degraded, "Degraded")
    assert cond["reason"] == "ProcessesNotReady"
    assert "1/2 dataflow processes ready: p11-dataflow-1: CrashLoopBackOff" in cond["message"]
    assert degraded["status"]["lifecycle"] == "Running"
    assert condition(degraded, "Ready")["status"] == "False"
    wait_lifecycle(cluster, operator, "p11", namespace, "Running", sync=True)
    wait_for(
        "not Degraded",
        lambda: (
            (ss := cluster.ss("p11", namespace)) and condition(ss, "Degraded")["status"] == "False"
        ),
    )


def test_a_rescale_stuck_on_an_unschedulable_process_is_degraded_with_the_reason(
    cluster: Cluster, operator: OperatorProcess, namespace: str, stockstream_body: Body
) -> None:
    """Seen on the real cluster: the third process of a rescale stayed Pending (`Insufficient
    cpu`) while the status said only WaitingForProcessesReady. Now it names the pod and why."""
    start_running(cluster, operator, namespace, stockstream_body("p12"))
    cluster.plane.kubectl_run("scale", "stockstream/p12", "--replicas=3", "-n", namespace)
    wait_lifecycle(cluster, operator, "p12", namespace, "Rescaling")

    def started_with_three() -> bool:  # the controller's part, with processes not ready yet
        sync_statefulset_pods(cluster.api, namespace, "p12-dataflow", ready=False)
        sts = cluster.get(APPS, "StatefulSet", "p12-dataflow", namespace)
        return bool(sts and sts["spec"]["replicas"] == 3)

    wait_for("the cluster of 3 started", started_with_three, on_fail=operator.tail)
    sync_statefulset_pods(cluster.api, namespace, "p12-dataflow", ready=False)
    cluster.res("v1", "Pod").status.patch(
        name="p12-dataflow-2",
        namespace=namespace,
        content_type="application/merge-patch+json",
        body={
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 Insufficient cpu.",
                    }
                ],
            }
        },
    )
    degraded = wait_for(
        "Degraded",
        lambda: (
            (ss := cluster.ss("p12", namespace))
            and condition(ss, "Degraded")["status"] == "True"
            and ss
        ),
        on_fail=operator.tail,
    )
    cond = condition(degraded, "Degraded")
    assert cond["reason"] == "ProcessesNotReady"
    assert (
        "p12-dataflow-2: Unschedulable (0/1 nodes are available: 1 Insufficient cpu.)"
        in cond["message"]
    ), cond
    assert degraded["status"]["lifecycle"] == "Rescaling"
    # Room on the node: every process ready, Running, no longer Degraded.
    wait_lifecycle(cluster, operator, "p12", namespace, "Running", sync=True)
    wait_for(
        "not Degraded",
        lambda: (
            (ss := cluster.ss("p12", namespace)) and condition(ss, "Degraded")["status"] == "False"
        ),
        on_fail=operator.tail,
    )
