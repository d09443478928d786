"""Issue 7, test 5: the ingestion StatefulSet (components/ingestion) shards its symbol
universe through its watch on the real API server: with 2 replicas every symbol is owned by
exactly one pod; scaled to 3 the running pods re-shard without a restart, symbols move, none
is lost or doubled. Checked from each pod's metrics (shard count, index, symbols owned)
against the rendezvous assignment of services/ingest/sharding.py."""

from __future__ import annotations

from services.ingest.sharding import assign
from tests.deploy.conftest import KUSTOMIZE_ROOT, Deployed
from tests.deploy_support import metric_value, poll, wait_ready

UNIVERSE = (KUSTOMIZE_ROOT / "components/ingestion/symbols.txt").read_text().split()


def shards(deployed: Deployed, replicas: int) -> dict[str, tuple[int, int, int, float]]:
    """pod -> (shard count, shard index, symbols owned, ticks published) once every pod sees
    `replicas` shards."""
    kube = deployed.kube

    def read() -> dict[str, tuple[int, int, int, float]] | None:
        result = {}
        for pod in wait_ready(kube, "app.kubernetes.io/name=ingest", replicas):
            name = pod["metadata"]["name"]
            text = kube.pod_metrics(name)
            count = int(metric_value(text, "stockstream_ingest_shard_count"))
            if count != replicas:
                return None
            published = metric_value(text, "stockstream_ingest_ticks_published_total")
            result[name] = (
                count,
                int(metric_value(text, "stockstream_ingest_shard_index")),
                int(metric_value(text, "stockstream_ingest_shard_symbols")),
                published,
            )
        return result if all(v[3] > 0 for v in result.values()) else None

    return poll(f"{replicas} ingest pods sharing the universe and publishing", read, 600, 3)


def assert_exact_cover(seen: dict[str, tuple[int, int, int, float]], replicas: int) -> None:
    expected = assign(UNIVERSE, replicas)
    indexes = sorted(index for _, index, _, _ in seen.values())
    assert indexes == list(range(replicas)), seen
    for pod, (_, index, owned, _) in seen.items():
        assert pod == f"ingest-{index}", "the shard index is the pod ordinal"
        assert owned == len(expected[index]), (pod, owned, expected[index])
    assert sum(owned for _, _, owned, _ in seen.values()) == len(UNIVERSE)
    covered = sorted(s for index in range(replicas) for s in expected[index])
    assert covered == sorted(UNIVERSE), "every symbol exactly once"


def restarts(deployed: Deployed) -> dict[str, int]:
    return {
        p["metadata"]["name"]: sum(c["restartCount"] for c in p["status"]["containerStatuses"])
        for p in deployed.kube.pods("app.kubernetes.io/name=ingest")
    }


def test_ingestion_shards_follow_the_statefulset(deployed: Deployed) -> None:
    kube = deployed.kube
    kube.run("scale", "statefulset", "ingest", "--replicas=2")
    two = shards(deployed, 2)
    assert_exact_cover(two, 2)
    before = restarts(deployed)

    kube.run("scale", "statefulset", "ingest", "--replicas=3")
    three = shards(deployed, 3)
    assert_exact_cover(three, 3)
    moved = {
        s
        for s in UNIVERSE
        if [i for i, owned in assign(UNIVERSE, 2).items() if s in owned]
        != [i for i, owned in assign(UNIVERSE, 3).items() if s in owned]
    }
    assert moved, "scaling to 3 moves symbols to the new pod"
    # The two first pods re-sharded through their watch, without a restart.
    after = restarts(deployed)
    assert {p: after[p] for p in before} == before
    for pod in before:
        assert metric_value(kube.pod_metrics(pod), "stockstream_ingest_reshards_total") >= 1, pod
