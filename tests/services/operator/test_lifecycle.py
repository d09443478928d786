"""The lifecycle state machine (services/operator/lifecycle.py), one row per transition."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.operator.lifecycle import Action, Lifecycle, Observed, decide

L = Lifecycle
RUNNING = Observed(
    desired_hash="h1",
    desired_processes=2,
    suspend=False,
    sts_exists=True,
    sts_hash="h1",
    sts_replicas=2,
    sts_processes=2,
    pods_alive=2,
    pods_ready=2,
    previous=L.RUNNING,
)

CASES = [
    # (name, observed, action, lifecycle, step)
    (
        "new resource",
        replace(
            RUNNING,
            sts_exists=False,
            sts_hash=None,
            sts_replicas=0,
            pods_alive=0,
            pods_ready=0,
            previous=None,
        ),
        Action.CREATE,
        L.DEPLOYING,
        "CreatingCluster",
    ),
    (
        "new suspended resource",
        replace(RUNNING, suspend=True, sts_exists=False, sts_hash=None, previous=None),
        Action.CREATE,
        L.SUSPENDED,
        "CreatingCluster",
    ),
    (
        "starting",
        replace(RUNNING, pods_ready=1, previous=L.DEPLOYING),
        Action.NONE,
        L.DEPLOYING,
        "WaitingForProcessesReady",
    ),
    ("steady", RUNNING, Action.NONE, L.RUNNING, "AllProcessesReady"),
    ("lost a process", replace(RUNNING, pods_ready=1), Action.NONE, L.RUNNING, "ProcessesNotReady"),
    (
        "scale 2->3: stop all first",
        replace(RUNNING, desired_hash="h3", desired_processes=3),
        Action.STOP,
        L.RESCALING,
        "StoppingProcesses",
    ),
    (
        "scale: wait for every process to be gone",
        replace(
            RUNNING,
            desired_hash="h3",
            desired_processes=3,
            sts_replicas=0,
            pods_alive=1,
            pods_ready=0,
            previous=L.RESCALING,
        ),
        Action.NONE,
        L.RESCALING,
        "WaitingForProcessesToStop",
    ),
    (
        "scale: all gone, start the new cluster at once",
        replace(
            RUNNING,
            desired_hash="h3",
            desired_processes=3,
            sts_replicas=0,
            pods_alive=0,
            pods_ready=0,
            previous=L.RESCALING,
        ),
        Action.START,
        L.RESCALING,
        "StartingProcesses",
    ),
    (
        "scale: new cluster starting",
        replace(
            RUNNING,
            desired_hash="h3",
            sts_hash="h3",
            desired_processes=3,
            sts_replicas=3,
            sts_processes=3,
            pods_alive=3,
            pods_ready=2,
            previous=L.RESCALING,
        ),
        Action.NONE,
        L.RESCALING,
        "WaitingForProcessesReady",
    ),
    (
        "scale: done",
        replace(
            RUNNING,
            desired_hash="h3",
            sts_hash="h3",
            desired_processes=3,
            sts_replicas=3,
            sts_processes=3,
            pods_alive=3,
            pods_ready=3,
            previous=L.RESCALING,
        ),
        Action.NONE,
        L.RUNNING,
        "AllProcessesReady",
    ),
    (
        "new image: upgrade, same size",
        replace(RUNNING, desired_hash="h2"),
        Action.STOP,
        L.UPGRADING,
        "StoppingProcesses",
    ),
    ("suspend", replace(RUNNING, suspend=True), Action.SCALE, L.SUSPENDED, "StoppingProcesses"),
    (
        "suspending: pods terminating",
        replace(
            RUNNING, suspend=True, sts_replicas=0, pods_alive=1, pods_ready=0, previous=L.SUSPENDED
        ),
        Action.NONE,
        L.SUSPENDED,
        "WaitingForProcessesToStop",
    ),
    (
        "suspended",
        replace(
            RUNNING, suspend=True, sts_replicas=0, pods_alive=0, pods_ready=0, previous=L.SUSPENDED
        ),
        Action.NONE,
        L.SUSPENDED,
        "Suspended",
    ),
    (
        "resume",
        replace(RUNNING, sts_replicas=0, pods_alive=0, pods_ready=0, previous=L.SUSPENDED),
        Action.SCALE,
        L.DEPLOYING,
        "StartingProcesses",
    ),
    (
        "resume waits for the last suspended pod",
        replace(RUNNING, sts_replicas=0, pods_alive=1, pods_ready=0, previous=L.SUSPENDED),
        Action.NONE,
        L.SUSPENDED,
        "WaitingForProcessesToStop",
    ),
    (
        "spec change while suspended: new template, still 0 processes",
        replace(
            RUNNING,
            suspend=True,
            desired_hash="h3",
            sts_replicas=0,
            pods_alive=0,
            pods_ready=0,
            previous=L.SUSPENDED,
        ),
        Action.START,
        L.SUSPENDED,
        "StartingProcesses",
    ),
    (
        "a fixed spec after Failed resumes the machine",
        replace(RUNNING, previous=L.FAILED),
        Action.NONE,
        L.RUNNING,
        "AllProcessesReady",
    ),
]


@pytest.mark.parametrize(
    ("observed", "action", "lifecycle", "step"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide(observed: Observed, action: Action, lifecycle: Lifecycle, step: str) -> None:
    decision = decide(observed)
    assert (decision.action, decision.lifecycle, decision.step) == (action, lifecycle, step)


def test_a_restart_never_starts_while_an_old_process_exists() -> None:
    """Whatever the counts, START only happens with replicas 0 and no pod alive."""
    for alive in range(4):
        for replicas in range(4):
            o = replace(
                RUNNING,
                desired_hash="new",
                desired_processes=3,
                sts_replicas=replicas,
                pods_alive=alive,
                pods_ready=min(alive, replicas),
            )
            if decide(o).action == Action.START:
                assert (replicas, alive) == (0, 0)
