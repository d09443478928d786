"""Operator recovery times on the real cluster: how long from `kubectl scale` (a coordinated
restart) and from a force-deleted dataflow pod until the leaderboards are fresh again.

A `StockStream` named `bench` replays the SSE session in a loop at real time (event time
then advances as fast as the wall clock), so in steady state the wall clock minus the latest
1-minute window end is a constant (the baseline). For each disruption, from the command:
  ready     every desired dataflow process Ready again (the status says Running for a scale)
  advanced  the latest 1m window end moved past its value when the processes became ready
            (the new cluster wrote a window)
  fresh     the lag back within baseline + 10 s (caught up with the feed)
Figures are printed, never judged. Needs the operated path deployed on the project's cluster:

    ./scripts/cluster/up.sh && skaffold run -p local-cluster,operator-local-cluster
    KUBECONFIG=~/.cache/stockstream/cluster/kubeconfig .venv/bin/python -m bench.operator_recovery
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from services.operator.freshness import read_window_ends
from tests.deploy_feed_support import REDIS_PASSWORD
from tests.deploy_operator_support import NAMESPACE, dataflow_selector, stockstream_manifest
from tests.deploy_support import Kube, poll, ready

NAME = "bench"
FRESH_MARGIN_S = 10.0


@dataclass(frozen=True)
class Recovery:
    what: str
    ready_s: float
    advanced_s: float
    fresh_s: float


def lag_s(redis_url: str) -> tuple[float, int]:
    """(wall clock minus the latest 1m window end, that end) read from Redis."""
    end = read_window_ends(redis_url, REDIS_PASSWORD)["1m"]
    return time.time() - end, end


def processes_ready(kube: Kube, count: int, old_uids: set[str]) -> bool:
    pods = [
        p for p in kube.pods(dataflow_selector(NAME)) if not p["metadata"].get("deletionTimestamp")
    ]
    return (
        len(pods) == count
        and all(ready(p) for p in pods)
        and not {p["metadata"]["uid"] for p in pods} & old_uids
    )


def measure(
    kube: Kube,
    redis_url: str,
    baseline_s: float,
    what: str,
    *,
    action: Callable[[], None],
    count: int,
    replaced: set[str],
) -> Recovery:
    """Run `action`; time until `count` processes (none of `replaced`) are ready, a window
    is written after that, and the lag is back to the baseline."""
    t0 = time.monotonic()
    action()
    poll(f"{what}: processes ready", lambda: processes_ready(kube, count, replaced), 900, 0.5)
    ready_s = time.monotonic() - t0
    _, end_at_ready = lag_s(redis_url)
    poll(f"{what}: a new window", lambda: lag_s(redis_url)[1] > end_at_ready, 900, 0.5)
    advanced_s = time.monotonic() - t0
    poll(f"{what}: fresh", lambda: lag_s(redis_url)[0] <= baseline_s + FRESH_MARGIN_S, 900, 0.5)
    return Recovery(what, ready_s, advanced_s, time.monotonic() - t0)


def baseline_lag_s(redis_url: str, seconds: float = 40) -> float:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(lag_s(redis_url)[0])
        time.sleep(1)
    return statistics.median(samples)


def uids(kube: Kube) -> set[str]:
    return {p["metadata"]["uid"] for p in kube.pods(dataflow_selector(NAME))}


def scale(kube: Kube, replicas: int) -> None:
    kube.run("scale", f"stockstream/{NAME}", f"--replicas={replicas}")


def force_delete(kube: Kube, pod: str) -> None:
    kube.run("delete", "pod", pod, "--grace-period=0", "--force")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", default=NAMESPACE)
    args = parser.parse_args()
    kube = Kube(kubeconfig=os.environ["KUBECONFIG"], namespace=args.namespace)
    operator = kube.json("get", "deployment", "stockstream-operator", "-n", "stockstream-system")
    image = operator["spec"]["template"]["spec"]["containers"][0]["image"]
    manifest = stockstream_manifest(kube, NAME, image, {"speed": 1, "loop": True, "from": "09:30"})
    spec = manifest["spec"]
    spec["broker"]["topic"], spec["broker"]["dlqTopic"] = "bench-ticks", "bench-ticks.dlq"
    spec["dataflow"]["recovery"] = {"deleteVolumesOnDelete": True}
    kube.run("apply", "-f", "-", stdin=json.dumps(manifest))
    results: list[Recovery] = []
    try:
        poll("bench Running", lambda: processes_ready(kube, 2, set()), 900, 2)
        with kube.port_forward("svc/redis", 6379) as port:
            url = f"redis://127.0.0.1:{port}/0"
            poll("windows in Redis", lambda: lag_s(url), 600, 2)
            time.sleep(60)  # past the first catch-up
            baseline = baseline_lag_s(url)
            print(f"baseline lag (wall clock - latest 1m window end): {baseline:.1f} s")
            for replicas in (3, 2):
                results.append(
                    measure(
                        kube,
                        url,
                        baseline,
                        f"kubectl scale to {replicas}",
                        action=partial(scale, kube, replicas),
                        count=replicas,
                        replaced=uids(kube),
                    )
                )
                time.sleep(30)
            victim = f"{NAME}-dataflow-0"
            victim_uid = {
                p["metadata"]["uid"]
                for p in kube.pods(dataflow_selector(NAME))
                if p["metadata"]["name"] == victim
            }
            results.append(
                measure(
                    kube,
                    url,
                    baseline,
                    f"force-delete {victim}",
                    action=partial(force_delete, kube, victim),
                    count=2,
                    replaced=victim_uid,
                )
            )
    finally:
        kube.run("delete", "stockstream", NAME, "--wait=true", timeout_s=300, check=False)
    print(f"{'disruption':<32} {'ready s':>8} {'advanced s':>11} {'fresh s':>8}")
    for r in results:
        print(f"{r.what:<32} {r.ready_s:>8.1f} {r.advanced_s:>11.1f} {r.fresh_s:>8.1f}")


if __name__ == "__main__":
    main()
