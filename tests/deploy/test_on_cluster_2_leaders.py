"""Issue 7, test 2: a slice of the SSE session replayed by the in-cluster replay reaches Redis
through the dataflow (2 processes in 2 pods); every window's means and top 3 in the history
keys equal the brute-force oracle, read through `kubectl port-forward` (and `redis-cli` for
the latest leaderboard, as a user reads it)."""

from __future__ import annotations

from tests.dataflows.leaders.compare import assert_same_leaders
from tests.dataflows.leaders.pipeline import ends_of
from tests.deploy.conftest import Deployed
from tests.deploy_feed_support import (
    Slice,
    assert_redis_matches_oracle,
    leaders_from_cli,
    redis_client,
    run_replay_job,
    wait_all_one_minute_windows,
)
from tests.deploy_support import metric_value, poll, wait_ready

# About 7 minutes of market time (30 symbols every 3 s), as fast as the broker takes it.
# The SSE file spans 09:25-10:30: slices A, B, C (tests 2-4) split it with gaps.
SLICE_A = Slice("a", "09:30", 4000)


def test_replayed_session_reaches_redis_as_the_oracle_says(deployed: Deployed) -> None:
    kube = deployed.kube
    # The slice is in the topic before the dataflow (re)starts. Found on the real cluster: a
    # dataflow started on an EMPTY topic ranks its first windows from whichever partitions
    # report first and never corrects them once a window length has passed
    # (dataflows/leaders/ranking.py, expected_partitions is empty); with history already in the
    # topic at start-up every partition is waited for. See deploy/kustomize/README.md.
    kube.run("scale", "statefulset", "dataflow", "--replicas=0")
    poll("dataflow stopped", lambda: not kube.pods("app.kubernetes.io/name=dataflow"), 300)
    run_replay_job(kube, SLICE_A)
    deployed.feed.add(SLICE_A)
    kube.run("scale", "statefulset", "dataflow", "--replicas=2")
    pods = wait_ready(kube, "app.kubernetes.io/name=dataflow", 2)
    oracle = deployed.feed.oracle()
    with kube.port_forward("svc/redis", 6379) as port:
        client = redis_client(port)
        wait_all_one_minute_windows(client, oracle, timeout_s=600)
        checked = assert_redis_matches_oracle(client, oracle)
        last_1m = oracle[("1m", max(ends_of(oracle, "1m")))]
        assert_same_leaders("redis-cli leaders:1m", leaders_from_cli(port, "1m"), last_1m, "mean")
    assert checked["1m"] >= 40, checked
    # Both processes took part: each decoded the ticks of its topic partitions.
    decoded = [
        metric_value(kube.pod_metrics(p["metadata"]["name"]), "stockstream_ticks_decoded_total")
        for p in pods
    ]
    assert all(d > 0 for d in decoded), decoded
    assert sum(decoded) == SLICE_A.limit, decoded
