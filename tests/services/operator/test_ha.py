"""High availability on the fast tier: two real operator processes, one Lease. Exactly one
holds it and acts; after a SIGKILL the standby takes over once the Lease has expired; a
clean shutdown frees the Lease for the standby; a frozen (SIGSTOP) leader that wakes after
a takeover exits before acting. Short timings (lease 6 s, renew deadline 4 s, retry 1 s);
bounds are generous (a loaded 2-core machine)."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from services.operator.election import LOST_EXIT
from stockstream.embedded._process import terminate
from tests.control_plane_support import ControlPlane, sync_statefulset_pods
from tests.services.operator.conftest import (
    LEASE_NAMESPACE,
    Cluster,
    OperatorProcess,
    start_operator,
    wait_for,
)

LEASE_S, DEADLINE_S, RETRY_S = 6, 4, 1
SLACK_S = 25.0  # scheduling and API latency on a loaded machine
WRITE_LINES = ('"applied"', '"patched"', '"deleted"', '"status written"', '"event"')


@dataclass
class Pair:
    ops: dict[str, OperatorProcess]
    lease: str
    history: list[tuple[str, int]] = field(default_factory=list)  # (holder, transitions)

    def holder(self) -> str | None:
        return self.history[-1][0] if self.history else None

    def roles(self, timeout_s: float = 120) -> tuple[str, str]:
        """(holder, standby) once one of the pair holds the Lease."""
        leader = wait_for(
            "one of the pair holds the Lease",
            lambda: self.holder() if self.holder() in self.ops else None,
            timeout_s=timeout_s,
            on_fail=self.tails,
        )
        return leader, next(n for n in self.ops if n != leader)

    def tails(self) -> str:
        return (
            "\n".join(f"--- {n}\n{op.tail()}" for n, op in self.ops.items())
            + f"\nhistory: {self.history}"
        )


def watch_holders(plane: ControlPlane, pair: Pair, stop: threading.Event) -> None:
    """Record every change of (holderIdentity, leaseTransitions), polling every 0.1 s."""
    leases = client.CoordinationV1Api(plane.api())
    while not stop.wait(0.1):
        try:
            spec = leases.read_namespaced_lease(pair.lease, LEASE_NAMESPACE).spec
        except client.ApiException:
            continue
        if spec is None:
            continue
        now = (spec.holder_identity or "", spec.lease_transitions or 0)
        if not pair.history or pair.history[-1] != now:
            pair.history.append(now)


@pytest.fixture
def pair(
    plane: ControlPlane, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> Iterator[Pair]:
    """Two operators on their own Lease, watching the test's namespace; the session's
    operator is stopped meanwhile (it would reconcile the same resources) and restarted."""
    terminate(operator.proc, timeout=60)
    lease = f"ha-{uuid.uuid4().hex[:6]}"
    timings = {
        "LEASE_NAME": lease,
        "LEASE_DURATION_S": str(LEASE_S),
        "RENEW_DEADLINE_S": str(DEADLINE_S),
        "RETRY_PERIOD_S": str(RETRY_S),
        "WATCH_NAMESPACES": namespace,
    }
    result = Pair(
        {
            n: start_operator(plane, tmp_path / f"{n}.log", POD_NAME=n, **timings)
            for n in ("ha-a", "ha-b")
        },
        lease,
    )
    stop = threading.Event()
    watcher = threading.Thread(target=watch_holders, args=(plane, result, stop), daemon=True)
    watcher.start()
    try:
        yield result
    finally:
        stop.set()
        watcher.join(timeout=10)
        for op in result.ops.values():
            if op.proc.poll() is None:
                os.kill(op.proc.pid, signal.SIGCONT)
            terminate(op.proc, timeout=30)
        operator.restart()


def metrics(op: OperatorProcess) -> dict[str, float]:
    """Sums of the operator's samples by name (e.g. stockstream_operator_reconciles_total)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{op.metrics_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def scrape(op: OperatorProcess) -> dict[str, float] | None:
    try:
        return metrics(op)
    except OSError:
        return None


def lifecycle_is(
    cluster: Cluster, name: str, ns: str, pred: Callable[[str], bool], pair: Pair
) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        sync_statefulset_pods(cluster.api, ns, f"{name}-dataflow")
        ss = cluster.ss(name, ns) or {}
        return ss if pred(str((ss.get("status") or {}).get("lifecycle", ""))) else None

    return wait_for(f"{name}'s lifecycle", check, timeout_s=120, on_fail=pair.tails)


def steady(op: OperatorProcess, pair: Pair) -> None:
    """Wait until `op` has made no write for three reconcile intervals."""

    def check() -> bool:
        before = metrics(op).get("stockstream_operator_writes_total", 0)
        time.sleep(3)
        return metrics(op).get("stockstream_operator_writes_total", 0) == before

    wait_for("a steady leader", check, timeout_s=90, on_fail=pair.tails)


def reporters(cluster: Cluster, name: str, ns: str) -> set[str]:
    return {
        e.get("reportingInstance") or e.get("reporting_instance") or ""
        for e in cluster.events(name, ns)
    }


def test_one_replica_acts_and_the_standby_takes_over_after_a_kill(
    cluster: Cluster, pair: Pair, namespace: str, stockstream_body: Callable[..., dict[str, Any]]
) -> None:
    leader, standby = pair.roles()
    ops = pair.ops
    wait_for(
        "the gauges: leader 1, standby 0",
        lambda: (
            (m := scrape(ops[leader]))
            and m.get("stockstream_operator_leader") == 1
            and (s := scrape(ops[standby]))
            and s.get("stockstream_operator_leader") == 0
        ),
        timeout_s=60,
        on_fail=pair.tails,
    )
    cluster.create(stockstream_body("ha1"), namespace)
    lifecycle_is(cluster, "ha1", namespace, bool, pair)
    wait_for(
        "passes of the leader",
        lambda: metrics(ops[leader]).get("stockstream_operator_reconciles_total", 0) >= 2,
        timeout_s=60,
        on_fail=pair.tails,
    )
    idle = metrics(ops[standby])
    assert idle.get("stockstream_operator_reconciles_total", 0) == 0, pair.tails()
    assert idle.get("stockstream_operator_writes_total", 0) == 0, pair.tails()
    assert idle["stockstream_operator_leader"] == 0
    assert '"lease acquired"' not in ops[standby].log.read_text(), pair.tails()
    assert reporters(cluster, "ha1", namespace) == {leader}

    os.kill(ops[leader].proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(
        "the standby holds the Lease",
        lambda: pair.holder() == standby,
        timeout_s=LEASE_S + 2 * RETRY_S + SLACK_S + 30,
        on_fail=pair.tails,
    )
    took = time.monotonic() - killed
    # it waited for the Lease to expire (the last renewal was at most one retry period
    # before the kill), and took over within lease duration + two retry periods (+ load)
    assert LEASE_S - 2 * RETRY_S <= took <= LEASE_S + 2 * RETRY_S + SLACK_S, (took, pair.tails())
    assert pair.history[-1][1] == pair.history[-2][1] + 1  # one transition
    before = len(cluster.events("ha1", namespace))
    cluster.patch_ss("ha1", namespace, {"suspend": True})
    lifecycle_is(cluster, "ha1", namespace, lambda s: s == "Suspended", pair)
    assert metrics(ops[standby])["stockstream_operator_leader"] == 1
    assert {e.get("reportingInstance") for e in cluster.events("ha1", namespace)[before:]} == {
        standby
    }

    # the killed one comes back as a standby; a clean shutdown of the holder frees the Lease
    ops[leader].restart()
    wait_for(
        "the restarted replica waits as a standby",
        lambda: (
            (m := scrape(ops[leader])) is not None and m.get("stockstream_operator_leader") == 0
        ),
        timeout_s=60,
        on_fail=pair.tails,
    )
    assert terminate(ops[standby].proc, timeout=60) == 0, pair.tails()
    wait_for(
        "the restarted replica holds the Lease",
        lambda: pair.holder() == leader,
        timeout_s=60,
        on_fail=pair.tails,
    )
    assert '"lease released"' in ops[standby].log.read_text(), pair.tails()  # not expired
    cluster.patch_ss("ha1", namespace, {"suspend": False})
    lifecycle_is(cluster, "ha1", namespace, lambda s: s not in ("", "Suspended"), pair)


def test_a_frozen_leader_wakes_up_after_a_takeover_and_exits_before_acting(
    cluster: Cluster, pair: Pair, namespace: str, stockstream_body: Callable[..., dict[str, Any]]
) -> None:
    leader, standby = pair.roles()
    ops = pair.ops
    cluster.create(stockstream_body("ha2"), namespace)
    lifecycle_is(cluster, "ha2", namespace, bool, pair)
    steady(ops[leader], pair)  # no write in flight when it is frozen
    os.kill(ops[leader].proc.pid, signal.SIGSTOP)
    frozen_at = ops[leader].log.stat().st_size  # a stopped process appends nothing
    wait_for(
        "the standby holds the Lease",
        lambda: pair.holder() == standby,
        timeout_s=LEASE_S + 2 * RETRY_S + SLACK_S + 30,
        on_fail=pair.tails,
    )
    # the new holder acts while the old one is frozen
    cluster.patch_ss("ha2", namespace, {"suspend": True})
    lifecycle_is(cluster, "ha2", namespace, lambda s: s == "Suspended", pair)
    assert metrics(ops[standby])["stockstream_operator_leader"] == 1

    os.kill(ops[leader].proc.pid, signal.SIGCONT)
    assert ops[leader].proc.wait(timeout=60) == LOST_EXIT, pair.tails()
    with ops[leader].log.open("rb") as f:
        f.seek(frozen_at)
        woke = f.read().decode(errors="replace")
    assert '"lease lost: stopping at once"' in woke, pair.tails()
    assert not [line for line in woke.splitlines() if any(w in line for w in WRITE_LINES)], woke
    # the Lease went from the old holder to the new one once, never back
    holders = [h for h, _ in pair.history if h]
    assert holders == [leader, standby], pair.history
    assert pair.holder() == standby and metrics(ops[standby])["stockstream_operator_leader"] == 1
