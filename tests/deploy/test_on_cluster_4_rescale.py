"""Issue 7, test 4: rescaling the dataflow from 2 to 3 processes the documented way resumes
from the recovery store and gives the oracle's results for the next slice too.

The documented way (deploy/kustomize/README.md, "Rescaling the plain manifests") is a
coordinated restart: scale the StatefulSet to 0 and wait until no dataflow pod is left, then
apply the overlay's patch-dataflow-replicas.yaml with the new count in both places. Patching
both at once instead makes the StatefulSet's rolling update mix cluster sizes (seen on this
cluster: a new size-3 process connected to an old size-2 process 0 just before its pod was
replaced, kept that dead connection until TCP gave up 135 s later, and the three processes
then crash-looped out of step under the kubelet's growing back-off)."""

from __future__ import annotations

import json

import yaml

from tests.deploy.conftest import KUSTOMIZE_ROOT, Deployed
from tests.deploy_feed_support import (
    Slice,
    assert_redis_matches_oracle,
    redis_client,
    run_replay_job,
    wait_all_one_minute_windows,
)
from tests.deploy_support import metric_value, poll, ready, wait_ready

PATCH = KUSTOMIZE_ROOT / "overlays/local-cluster/patch-dataflow-replicas.yaml"
# About 7 minutes of market time, starting 17 minutes after slice B ends.
SLICE_C = Slice("c", "10:15", 4000)


def replicas_patch(replicas: int) -> dict:
    """The overlay's own patch with `replicas` in both places it names."""
    patch = yaml.safe_load(PATCH.read_text())
    patch["spec"]["replicas"] = replicas
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    (env,) = [e for e in container["env"] if e["name"] == "DATAFLOW_REPLICAS"]
    env["value"] = str(replicas)
    return patch


def test_rescaling_to_three_processes_gives_the_same_results(deployed: Deployed) -> None:
    kube = deployed.kube
    kube.run("scale", "statefulset", "dataflow", "--replicas=0")
    poll("no dataflow pod left", lambda: not kube.pods("app.kubernetes.io/name=dataflow"), 300, 2)
    kube.run(
        "patch",
        "statefulset",
        "dataflow",
        "--type",
        "strategic",
        "-p",
        json.dumps(replicas_patch(3)),
    )

    def rolled() -> bool:
        pods = [
            p
            for p in kube.pods("app.kubernetes.io/name=dataflow")
            if not p["metadata"].get("deletionTimestamp")
        ]
        envs = [
            {e["name"]: e.get("value") for e in p["spec"]["containers"][0]["env"]} for p in pods
        ]
        return (
            len(pods) == 3
            and all(ready(p) for p in pods)
            and all(e["DATAFLOW_REPLICAS"] == "3" for e in envs)
        )

    poll("3 dataflow pods with DATAFLOW_REPLICAS=3", rolled, 900, 5)
    pods = wait_ready(kube, "app.kubernetes.io/name=dataflow", 3)
    run_replay_job(kube, SLICE_C)
    deployed.feed.add(SLICE_C)
    oracle = deployed.feed.oracle()
    with kube.port_forward("svc/redis", 6379) as port:
        client = redis_client(port)
        wait_all_one_minute_windows(client, oracle, timeout_s=600)
        assert_redis_matches_oracle(client, oracle)
    # Six topic partitions over three processes: every process worked on slice C.
    decoded = [
        metric_value(kube.pod_metrics(p["metadata"]["name"]), "stockstream_ticks_decoded_total")
        for p in pods
    ]
    assert all(d > 0 for d in decoded), decoded
