"""The dataflow's lifecycle: a pure state machine from what is observed to one next step.

States (`status.lifecycle`):

    Deploying  -- the cluster of the current spec is starting, not all processes ready yet
    Running    -- every desired process of the current spec is ready
    Rescaling  -- coordinated restart for a new process count: stopping all, then starting all
    Upgrading  -- coordinated restart for a new image/windows/workers/settings
    Suspended  -- spec.suspend: no process runs, the recovery volumes keep the state
    Failed     -- the spec failed the operator's checks (or a topic change was refused);
                  nothing is created or changed until the spec is fixed
    RolledBack -- Running, but the last stable spec, not the resource's: its generation did
                  not land a fresh window in time (rollback.py); the next edit is tried

    (new) -> Deploying -> Running
    Running -> Rescaling | Upgrading -> (all stopped) -> (all started) -> Running
    any -> Suspended (stop all) -> Deploying (resume) -> Running
    any -> Failed (bad spec) -> the state the objects are in, once fixed
    Upgrading | Rescaling | Deploying -> (timeout) -> Upgrading (back) -> RolledBack

A coordinated restart never mixes cluster sizes or versions: the StatefulSet is scaled to 0
with its old template, the operator waits until no dataflow pod exists any more (terminating
ones included), then applies the new template (size, addresses, settings) and the new
replica count in one write. The StatefulSet's `OnDelete` strategy keeps Kubernetes from
replacing pods on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Lifecycle(StrEnum):
    DEPLOYING = "Deploying"
    RUNNING = "Running"
    RESCALING = "Rescaling"
    UPGRADING = "Upgrading"
    SUSPENDED = "Suspended"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


class Action(StrEnum):
    NONE = "none"
    CREATE = "create"  # create the StatefulSet (current template, target replicas)
    STOP = "stop"  # set replicas 0, keep the template
    START = "start"  # apply the current template and the target replicas together
    SCALE = "scale"  # same template: only replicas change (suspend/resume)


@dataclass(frozen=True)
class Observed:
    """What the operator saw this pass."""

    desired_hash: str  # cluster_hash of the spec
    desired_processes: int
    suspend: bool
    sts_exists: bool
    sts_hash: str | None  # annotation of the existing StatefulSet
    sts_replicas: int  # its spec.replicas
    sts_processes: int  # DATAFLOW_REPLICAS of its template (its cluster size)
    pods_alive: int  # dataflow pods that exist, terminating ones included
    pods_ready: int  # of those, Ready and not terminating
    previous: Lifecycle | None  # status.lifecycle before this pass


@dataclass(frozen=True)
class Decision:
    action: Action
    lifecycle: Lifecycle
    step: str  # reason of the Progressing condition, e.g. StoppingProcesses


_RESTARTING = (Lifecycle.RESCALING, Lifecycle.UPGRADING)


def decide(o: Observed) -> Decision:  # noqa: PLR0911 - one return per transition
    """The next step and the lifecycle state for `o`."""
    target = 0 if o.suspend else o.desired_processes
    if not o.sts_exists:
        return Decision(
            Action.CREATE,
            Lifecycle.SUSPENDED if o.suspend else Lifecycle.DEPLOYING,
            "CreatingCluster",
        )
    if o.sts_hash != o.desired_hash:
        restart = _restart_kind(o)
        if o.sts_replicas != 0:
            return Decision(Action.STOP, restart, "StoppingProcesses")
        if o.pods_alive > 0:
            return Decision(Action.NONE, restart, "WaitingForProcessesToStop")
        return Decision(
            Action.START, Lifecycle.SUSPENDED if o.suspend else restart, "StartingProcesses"
        )
    if o.sts_replicas != target:
        if target == 0:
            return Decision(Action.SCALE, Lifecycle.SUSPENDED, "StoppingProcesses")
        if o.pods_alive > 0:  # resuming: the last suspended pods must be gone first
            return Decision(Action.NONE, Lifecycle.SUSPENDED, "WaitingForProcessesToStop")
        return Decision(Action.SCALE, Lifecycle.DEPLOYING, "StartingProcesses")
    if target == 0:
        step = "Suspended" if o.pods_alive == 0 else "WaitingForProcessesToStop"
        return Decision(Action.NONE, Lifecycle.SUSPENDED, step)
    if o.pods_ready >= target:
        return Decision(Action.NONE, Lifecycle.RUNNING, "AllProcessesReady")
    if o.previous in (*_RESTARTING, Lifecycle.DEPLOYING):
        return Decision(Action.NONE, o.previous, "WaitingForProcessesReady")
    if o.previous == Lifecycle.RUNNING:  # a process was lost: Degraded, not a new lifecycle
        return Decision(Action.NONE, Lifecycle.RUNNING, "ProcessesNotReady")
    return Decision(Action.NONE, Lifecycle.DEPLOYING, "WaitingForProcessesReady")


def _restart_kind(o: Observed) -> Lifecycle:
    if o.previous is not None and o.previous in _RESTARTING:
        return o.previous
    if o.sts_processes != o.desired_processes:
        return Lifecycle.RESCALING
    return Lifecycle.UPGRADING
