"""Issue 7, test 3: a dataflow pod force-deleted mid-stream comes back, resumes from its
recovery volume (the same PVC, snapshots not recreated, the topic not re-read from the
start), and the final state in Redis still equals the oracle."""

from __future__ import annotations

from tests.dataflows.leaders.pipeline import history_ends
from tests.deploy.conftest import Deployed
from tests.deploy_feed_support import (
    Slice,
    assert_redis_matches_oracle,
    redis_client,
    run_replay_job,
    wait_all_one_minute_windows,
    wait_replay_job,
)
from tests.deploy_support import metric_value, poll, wait_ready

# About 7 minutes of market time, 12 after slice A ends, at 4x: about 105 s of stream (at 10x
# a loaded machine once saw the replay end before the first window of slice B was written).
SLICE_B = Slice("b", "09:50", 4000, speed=4)
VICTIM = "dataflow-0"  # process 0 holds the recovery partitions it created


def test_force_deleted_dataflow_pod_resumes_from_its_volume(deployed: Deployed) -> None:
    kube = deployed.kube
    before = {
        p["metadata"]["name"]: p["metadata"]["uid"]
        for p in wait_ready(kube, "app.kubernetes.io/name=dataflow", 2)
    }
    pvc_uid = kube.json("get", "pvc", f"recovery-{VICTIM}")["metadata"]["uid"]
    job = run_replay_job(kube, SLICE_B, wait=False)
    deployed.feed.add(SLICE_B)
    oracle = deployed.feed.oracle()
    first_b_ms = min(t.ts_ms for t in SLICE_B.ticks())
    with kube.port_forward("svc/redis", 6379) as port:
        client = redis_client(port)
        # Mid-stream: the dataflow has written windows of slice B, the replay still runs.
        poll(
            "first windows of slice B in Redis",
            lambda: max(history_ends(client, "1m"), default=0) >= first_b_ms + 20_000,
            600,
            1,
        )
        assert not kube.json("get", "job", job)["status"].get("succeeded"), (
            "the replay finished before the kill: the test did not kill mid-stream"
        )
        kube.run("delete", "pod", VICTIM, "--grace-period=0", "--force")
        wait_replay_job(kube, job, SLICE_B.limit)
        after = wait_ready(kube, "app.kubernetes.io/name=dataflow", 2, timeout_s=600)
        uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in after}
        assert uids[VICTIM] != before[VICTIM], "the pod was not replaced"
        wait_all_one_minute_windows(client, oracle, timeout_s=600)
        assert_redis_matches_oracle(client, oracle)
    assert kube.json("get", "pvc", f"recovery-{VICTIM}")["metadata"]["uid"] == pvc_uid
    log = kube.logs(f"pod/{VICTIM}", 500)
    assert "recovery partitions created" not in log, "the snapshots were recreated, not resumed"
    # Resumed from the snapshot's offsets: the processes since the kill decoded fewer ticks
    # than the topic holds (a start from scratch re-reads all of slices A and B).
    decoded = sum(
        metric_value(kube.pod_metrics(p["metadata"]["name"]), "stockstream_ticks_decoded_total")
        for p in after
    )
    total = sum(piece.limit for piece in deployed.feed.slices)
    assert decoded < total, (decoded, total)
