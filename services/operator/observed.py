"""What a reconcile pass reads from the cluster, made into plain values (pure): addresses
as the operator (in its own namespace) must dial them, pod readiness, and why pods wait."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from services.operator.kube import Obj


def qualify(hosts: str, namespace: str) -> str:
    """`redis:6379` -> `redis.<ns>.svc:6379` for the operator, which runs in its own
    namespace; dotted names, IPs and localhost are kept."""
    out = []
    for hostport in hosts.split(","):
        host, _, port = (
            hostport.strip().rpartition(":") if ":" in hostport else (hostport.strip(), "", "")
        )
        if host and "." not in host and host != "localhost":
            host = f"{host}.{namespace}.svc"
        out.append(f"{host}:{port}" if port else host)
    return ",".join(out)


def qualify_url(url: str, namespace: str) -> str:
    scheme, _, rest = url.partition("://")
    hostport, slash, path = rest.partition("/")
    return f"{scheme}://{qualify(hostport, namespace)}{slash}{path}"


def pod_ready(pod: Mapping[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


# Waiting reasons of a container that is merely starting (not worth a Degraded condition).
STARTING_REASONS = frozenset({"ContainerCreating", "PodInitializing"})


def no_reason(pod: Obj) -> str | None:
    return None


def waiting_reasons(
    pods: list[Obj],
    *,
    stuck_only: bool = False,
    why_not_ready: Callable[[Obj], str | None] = no_reason,
) -> str:
    """e.g. `x-dataflow-1: CrashLoopBackOff` for pods whose container waits,
    `x-dataflow-0: running, not ready (...)` for a running one failing its readiness probe, and
    `x-dataflow-2: Unschedulable (0/1 nodes are available: 1 Insufficient cpu. ...)` for pods
    the scheduler cannot place (seen on the real cluster: a rescale to 3 processes on a full
    node waited without a word). `stuck_only` leaves out containers that are merely starting
    (a running container not ready yet is one). `why_not_ready(pod)`: the reason a running,
    unready process gives (its /readyz body, `read_readyz`), if it can be asked."""
    out = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("reason") == "Unschedulable"
            ):
                out.append(f"{name}: Unschedulable ({cond.get('message', '')[:200]})")
        for cs in status.get("containerStatuses") or []:
            state = cs.get("state") or {}
            reason = (state.get("waiting") or {}).get("reason")
            ended = (state.get("terminated") or {}).get("reason")
            # why the previous run ended (OOMKilled, Error): a crash loop between two
            # waits shows it, so does a restarted process that is running again
            last = ((cs.get("lastState") or {}).get("terminated") or {}).get("reason")
            after = f" (last exit: {last})" if last else ""
            if reason and not (stuck_only and reason in STARTING_REASONS):
                out.append(f"{name}: {reason}{after}")
            elif ended:
                out.append(f"{name}: {ended}")
            elif "running" in state and cs.get("ready") is False and (last or not stuck_only):
                why = why_not_ready(pod)
                out.append(
                    f"{name}: running, not ready ({why}){after}"
                    if why
                    else f"{name}: {RUNNING_NOT_READY}{after}"
                )
    return "; ".join(out)


# A running process failing its readiness probe: the kubelet keeps the probe's body (the
# reason, e.g. `broker unreachable since 12s`) to itself, so the operator asks the pod's
# /readyz (`read_readyz`); when it cannot (no pod IP, a NetworkPolicy), this says where to look.
RUNNING_NOT_READY = "running, not ready (its /readyz says why)"


COUNTER = re.compile(r" (?:since|for) \d+(?:\.\d+)?s\b")


def read_readyz(pod: Obj, port: int, timeout_s: float = 1.0) -> str | None:
    """The body of a pod's failing /readyz (the dataflow's reason, dataflows/leaders/health.py),
    or None if it answers 200 or cannot be reached."""
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        return None
    try:
        with urllib.request.urlopen(f"http://{ip}:{port}/readyz", timeout=timeout_s):
            return None  # ready by now
    except urllib.error.HTTPError as e:
        body = " ".join(e.read(300).decode("utf-8", "replace").split())
        # no running counters (`since 12s`): an unchanged reason writes no new status
        return COUNTER.sub("", body)[:200] or f"HTTP {e.code}"
    except (OSError, ValueError):
        return None


def template_processes(sts: Mapping[str, Any]) -> int:
    for c in sts["spec"]["template"]["spec"]["containers"]:
        for e in c.get("env") or []:
            if e["name"] == "DATAFLOW_REPLICAS":
                return int(e["value"])
    return 0
