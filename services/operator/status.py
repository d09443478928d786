"""`status` of a StockStream from one pass's verdicts (pure): lifecycle, conditions Ready /
Progressing / Degraded with reasons, processes, topic, leaderboards. A condition's
`lastTransitionTime` only moves when its status flips, and messages carry no running
counters, so an unchanged pipeline yields an identical status (no write)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.operator.lifecycle import Lifecycle

_PROGRESSING = (Lifecycle.DEPLOYING, Lifecycle.RESCALING, Lifecycle.UPGRADING)
RUNNING = (Lifecycle.RUNNING, Lifecycle.ROLLED_BACK)  # every process of the cluster runs


@dataclass(frozen=True)
class Verdict:
    """Everything one pass concluded."""

    generation: int
    lifecycle: Lifecycle
    step: str  # Progressing reason, e.g. StoppingProcesses
    ready: int
    desired: int
    alive: int
    selector: str
    degraded_reason: str = ""  # "" = not degraded
    degraded_message: str = ""
    message: str = ""
    topic: Mapping[str, Any] | None = None
    leaderboards: Mapping[str, Any] | None = None
    cluster_hash: str | None = None


def condition(
    previous: list[Mapping[str, Any]],
    type_: str,
    value: bool,
    *,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> dict[str, Any]:
    status = "True" if value else "False"
    old = next((c for c in previous if c.get("type") == type_), None)
    since = now.isoformat(timespec="seconds")
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        since = old["lastTransitionTime"]
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": generation,
    }


def build(previous: Mapping[str, Any], v: Verdict, now: datetime) -> dict[str, Any]:
    """The new status from the previous one and this pass's verdict."""
    conds = list(previous.get("conditions") or [])
    running = v.lifecycle in RUNNING and v.ready >= v.desired > 0
    ready_reason = (
        "AllProcessesReady"
        if running
        else ("Failed" if v.lifecycle == Lifecycle.FAILED else v.step)
    )
    progressing = v.lifecycle in _PROGRESSING
    prog_reason = (
        v.step
        if progressing
        else (
            {
                Lifecycle.SUSPENDED: "Suspended",
                Lifecycle.FAILED: "Failed",
                Lifecycle.ROLLED_BACK: "RolledBack",
            }.get(v.lifecycle, "Stable")
        )
    )
    degraded = bool(v.degraded_reason)
    status: dict[str, Any] = {
        "observedGeneration": v.generation,
        "lifecycle": str(v.lifecycle),
        "message": v.message or (v.degraded_message if degraded else v.step),
        "replicas": v.alive,
        "readyProcesses": v.ready,
        "desiredProcesses": v.desired,
        "processes": f"{v.ready}/{v.desired}",
        "selector": v.selector,
        "conditions": [
            condition(
                conds,
                "Ready",
                running,
                reason=ready_reason,
                message="every dataflow process is ready" if running else v.step,
                generation=v.generation,
                now=now,
            ),
            condition(
                conds,
                "Progressing",
                progressing,
                reason=prog_reason,
                message=v.step,
                generation=v.generation,
                now=now,
            ),
            condition(
                conds,
                "Degraded",
                degraded,
                reason=v.degraded_reason or "AsExpected",
                message=v.degraded_message,
                generation=v.generation,
                now=now,
            ),
        ],
    }
    if v.cluster_hash is not None:
        status["clusterHash"] = v.cluster_hash
    elif previous.get("clusterHash"):
        status["clusterHash"] = previous["clusterHash"]
    topic = v.topic if v.topic is not None else previous.get("topic")
    if topic:
        status["topic"] = dict(topic)
    boards = v.leaderboards if v.leaderboards is not None else previous.get("leaderboards")
    if boards:
        status["leaderboards"] = dict(boards)
    return status


def ready_since(previous: Mapping[str, Any]) -> datetime | None:
    """When the Ready condition last became True (None if it is not True)."""
    for c in previous.get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True" and c.get("lastTransitionTime"):
            return datetime.fromisoformat(c["lastTransitionTime"])
    return None


def differs(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether writing `new` would change anything (kopf's own status keys ignored)."""
    return any(old.get(k) != v for k, v in new.items())
