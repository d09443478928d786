"""One reconcile pass of a StockStream: checks, topics, owned objects, the dataflow's next
lifecycle step, pruning, freshness, then the status and an Event per transition.

A pass is idempotent: it reads what exists, applies the desired objects (a server-side apply
that changes nothing writes nothing) and takes at most one lifecycle step.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import redis
from confluent_kafka import KafkaException

from services.operator import feed, freshness, objects
from services.operator.checks import reference_problems
from services.operator.kube import Kube, Obj, RefusedError
from services.operator.lifecycle import Action, Decision, Lifecycle, Observed, decide
from services.operator.model import InvalidSpecError, StockStreamSpec, parse_spec
from services.operator.status import Verdict, build, ready_since
from services.operator.topics import Admin, TopicAction, decide_topic

log = logging.getLogger(__name__)

PRUNED_KINDS = (
    ("v1", "ConfigMap"), ("v1", "Service"), ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("batch/v1", "Job"),
    ("policy/v1", "PodDisruptionBudget"), ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
)


def qualify(hosts: str, namespace: str) -> str:
    """`redis:6379` -> `redis.<ns>.svc:6379` for the operator, which runs in its own
    namespace; dotted names, IPs and localhost are kept."""
    out = []
    for hostport in hosts.split(","):
        host, _, port = hostport.strip().rpartition(":") if ":" in hostport else (
            hostport.strip(), "", "")
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


def waiting_reasons(pods: list[Obj], *, stuck_only: bool = False) -> str:
    """e.g. `x-dataflow-1: CrashLoopBackOff` for pods whose container waits,
    `x-dataflow-0: running, not ready (...)` for a running one failing its readiness probe, and
    `x-dataflow-2: Unschedulable (0/1 nodes are available: 1 Insufficient cpu. ...)` for pods
    the scheduler cannot place (seen on the real cluster: a rescale to 3 processes on a full
    node waited without a word). `stuck_only` leaves out containers that are merely starting
    (a running container not ready yet is one)."""
    out = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if (cond.get("type") == "PodScheduled" and cond.get("status") == "False"
                    and cond.get("reason") == "Unschedulable"):
                out.append(f"{name}: Unschedulable ({cond.get('message', '')[:200]})")
        for cs in status.get("containerStatuses") or []:
            state = cs.get("state") or {}
            reason = (state.get("waiting") or {}).get("reason")
            if reason and not (stuck_only and reason in STARTING_REASONS):
                out.append(f"{name}: {reason}")
            elif "running" in state and cs.get("ready") is False and not stuck_only:
                out.append(f"{name}: {RUNNING_NOT_READY}")
    return "; ".join(out)


# A running process failing its readiness probe: the kubelet keeps the probe's body (the
# reason, e.g. `broker unreachable since 12s`) to itself, so the pod's /readyz tells it.
RUNNING_NOT_READY = "running, not ready (its /readyz says why)"


def template_processes(sts: Mapping[str, Any]) -> int:
    for c in sts["spec"]["template"]["spec"]["containers"]:
        for e in c.get("env") or []:
            if e["name"] == "DATAFLOW_REPLICAS":
                return int(e["value"])
    return 0


@dataclass
class Pass:
    """What one pass found, for the status and the Events."""

    verdict: Verdict
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)


class Reconciler:
    """Reconciles StockStreams through `kube`; broker admin clients are cached."""

    def __init__(self, kube: Kube, check_freshness: bool = True) -> None:
        self.kube = kube
        self.check_freshness = check_freshness
        self._admins: dict[str, Admin] = {}

    # -- entry point -------------------------------------------------------------------
    def reconcile(self, body: Mapping[str, Any], previous: Mapping[str, Any],
                  now: datetime | None = None) -> dict[str, Any]:
        """One pass; returns the status written (or unchanged)."""
        now = now or datetime.now(UTC)
        result = self._pass(body, previous, now)
        status = build(previous, result.verdict, now)
        if result.verdict.lifecycle != previous.get("lifecycle"):
            kind = "Warning" if result.verdict.lifecycle == Lifecycle.FAILED else "Normal"
            result.events.insert(0, (kind, str(result.verdict.lifecycle),
                                  f"lifecycle {previous.get('lifecycle') or '(new)'} -> "
                                  f"{result.verdict.lifecycle}: {status['message']}"))
        old_degraded = _condition(previous, "Degraded")
        new_degraded = _condition(status, "Degraded")
        if new_degraded.get("status") == "True" and (
                old_degraded.get("reason") != new_degraded.get("reason")
                or old_degraded.get("status") != "True"):
            result.events.append(("Warning", new_degraded["reason"], new_degraded["message"]))
        elif old_degraded.get("status") == "True" and new_degraded.get("status") != "True":
            result.events.append(("Normal", "Recovered", f"no longer {old_degraded['reason']}"))
        meta = body["metadata"]
        if any(previous.get(k) != v for k, v in status.items()):
            self.kube.patch_status(meta["name"], meta["namespace"], status)
        for type_, reason, message in result.events:
            self.kube.event(body, type_, reason, message)
        return status

    # -- the pass ----------------------------------------------------------------------
    def _pass(self, body: Mapping[str, Any], previous: Mapping[str, Any],
              now: datetime) -> Pass:
        meta = body["metadata"]
        name, ns, gen = meta["name"], meta["namespace"], int(meta.get("generation", 0))
        sel = objects.selector_text(name, "dataflow")
        sts_name = objects.names(name)["statefulset"]
        sts = self.kube.get("apps/v1", "StatefulSet", sts_name, ns)
        pods = self.kube.list("v1", "Pod", ns, sel)
        ready = sum(1 for p in pods if pod_ready(p))
        base = Verdict(generation=gen, lifecycle=Lifecycle.DEPLOYING, step="", ready=ready,
                       desired=0, alive=len(pods), selector=sel)
        try:
            spec = parse_spec(body.get("spec") or {})
        except InvalidSpecError as e:  # only without the CRD's schema or CEL rules
            return self._failed(base, "InvalidSpec", str(e))
        base = replace(base, desired=0 if spec.suspend else spec.dataflow.processes)

        problems = reference_problems(
            spec, lambda kind, ref: self.kube.ref_value(ns, kind, ref) is not None)
        if problems:
            return self._failed(base, "InvalidSpec", "; ".join(problems))
        topic_status, topic_error, refused, events = self._topics(spec, ns)
        if refused:
            return self._failed(base, "TopicPartitionsRefused", refused, topic_status)
        if topic_error and sts is None:
            return Pass(replace(base, step="WaitingForBroker", degraded_reason="BrokerUnreachable",
                                degraded_message=topic_error, topic=topic_status), events)

        desired_hash = objects.cluster_hash(name, spec)
        prev_life = previous.get("lifecycle")
        decision = decide(Observed(
            desired_hash=desired_hash, desired_processes=spec.dataflow.processes,
            suspend=spec.suspend, sts_exists=sts is not None,
            sts_hash=((sts or {}).get("metadata", {}).get("annotations") or {}).get(
                objects.HASH_ANNOTATION),
            sts_replicas=int((sts or {}).get("spec", {}).get("replicas") or 0),
            sts_processes=template_processes(sts) if sts else 0,
            pods_alive=len(pods), pods_ready=ready,
            previous=Lifecycle(prev_life) if prev_life in set(Lifecycle) else None))
        try:  # the API server refuses what the CRD keeps as given (e.g. a malformed affinity)
            for obj in objects.dataflow_objects(name) + feed.feed_objects(name, spec):
                self.kube.apply(objects.owned(obj, body), ns)
            sts = self._act(decision, body=body, name=name, ns=ns, spec=spec, sts=sts) or sts
        except RefusedError as e:
            return self._failed(base, "InvalidSpec", str(e), topic_status)
        if decision.action != Action.NONE:
            events.append(("Normal", decision.step,
                           f"{decision.action}: {decision.lifecycle}, "
                           f"{spec.dataflow.processes} processes, "
                           f"cluster {desired_hash}{' (suspended)' if spec.suspend else ''}"))
        self._prune(body, name, ns, spec, sts)
        verdict = replace(base, lifecycle=decision.lifecycle, step=decision.step,
                          topic=topic_status, cluster_hash=desired_hash
                          if decision.action in (Action.CREATE, Action.START) else None)
        return Pass(self._degraded(verdict, decision, pods=pods, topic_error=topic_error,
                                   spec=spec, ns=ns, previous=previous, now=now), events)

    def _failed(self, base: Verdict, reason: str, message: str,
                topic: Mapping[str, Any] | None = None) -> Pass:
        return Pass(replace(base, lifecycle=Lifecycle.FAILED, step=reason,
                            degraded_reason=reason, degraded_message=message, message=message,
                            topic=topic))

    # -- topics ------------------------------------------------------------------------
    def _admin(self, spec: StockStreamSpec, ns: str) -> Admin:
        extra_raw = (self.kube.ref_value(ns, "Secret", spec.broker.config_secret)
                     if spec.broker.config_secret else None)
        bootstrap = qualify(spec.broker.bootstrap_servers, ns)
        key = f"{bootstrap}|{extra_raw or ''}"
        if key not in self._admins:
            self._admins[key] = Admin(bootstrap, Admin.extra_from_json(extra_raw))
        return self._admins[key]

    def _topics(self, spec: StockStreamSpec, ns: str) -> tuple[
            dict[str, Any] | None, str, str, list[tuple[str, str, str]]]:
        """(status.topic, broker error, refusal message, events)."""
        b = spec.broker
        events: list[tuple[str, str, str]] = []
        try:
            admin = self._admin(spec, ns)
            existing = admin.partitions(b.topic)
            decision = decide_topic(b.topic, existing, b.partitions, b.allow_partition_increase)
            if decision.action == TopicAction.REFUSE:
                return {"name": b.topic, "partitions": existing}, "", decision.message, events
            if decision.action == TopicAction.CREATE:
                admin.create(b.topic, b.partitions, b.replication_factor)
                events.append(("Normal", "TopicCreated", decision.message))
            elif decision.action == TopicAction.INCREASE:
                admin.increase(b.topic, b.partitions)
                events.append(("Normal", "TopicPartitionsIncreased", decision.message))
            if admin.partitions(b.dlq_topic) is None:
                admin.create(b.dlq_topic, b.dlq_partitions, b.replication_factor)
                events.append(("Normal", "TopicCreated", f"created topic {b.dlq_topic}"))
        except (KafkaException, TimeoutError, ValueError) as exc:
            msg = (f"broker {b.bootstrap_servers} unreachable or refused the topic request "
                   f"({type(exc).__name__}); check spec.broker.bootstrapServers and the broker")
            log.warning("topic check failed", extra={"error": str(exc)})
            return None, msg, "", events
        return {"name": b.topic, "partitions": b.partitions}, "", "", events

    # -- dataflow ----------------------------------------------------------------------
    def _act(self, decision: Decision, *, body: Mapping[str, Any], name: str, ns: str,
             spec: StockStreamSpec, sts: Obj | None) -> Obj | None:
        target = 0 if spec.suspend else spec.dataflow.processes
        sts_name = objects.names(name)["statefulset"]
        if decision.action in (Action.CREATE, Action.START):
            self.kube.apply(objects.owned(objects.config_map(name, spec), body), ns)
            return self.kube.apply(
                objects.owned(objects.statefulset(name, spec, target), body), ns)
        if decision.action == Action.STOP:  # not for a template the API server refuses
            self.kube.apply(objects.owned(objects.statefulset(name, spec, target), body), ns,
                            dry_run=True)
            return self.kube.patch("apps/v1", "StatefulSet", sts_name, ns,
                                   {"spec": {"replicas": 0}})
        if decision.action == Action.SCALE:
            return self.kube.patch("apps/v1", "StatefulSet", sts_name, ns,
                                   {"spec": {"replicas": target}})
        return sts

    def _prune(self, body: Mapping[str, Any], name: str, ns: str, spec: StockStreamSpec,
               sts: Obj | None) -> None:
        """Delete this resource's objects that the spec no longer wants (e.g. the replay
        Deployment after a switch to ingest, dataflow ConfigMaps of past clusters)."""
        keep = {(o["kind"], o["metadata"]["name"])
                for o in objects.dataflow_objects(name) + feed.feed_objects(name, spec)}
        keep.add(("StatefulSet", objects.names(name)["statefulset"]))
        for src in ((sts or {}).get("spec", {}).get("template", {}).get("spec", {})
                    .get("containers", [{}])[0].get("envFrom") or []):
            keep.add(("ConfigMap", src["configMapRef"]["name"]))
        uid = body["metadata"]["uid"]
        sel = f"app.kubernetes.io/instance={name},app.kubernetes.io/managed-by={objects.MANAGED_BY}"
        for api_version, kind in PRUNED_KINDS:
            for obj in self.kube.list(api_version, kind, ns, sel):
                owners = obj["metadata"].get("ownerReferences") or []
                if (kind, obj["metadata"]["name"]) in keep or not any(
                        o.get("uid") == uid for o in owners):
                    continue
                self.kube.delete(api_version, kind, obj["metadata"]["name"], ns)

    # -- degraded / freshness ----------------------------------------------------------
    def _degraded(self, v: Verdict, decision: Decision, *, pods: list[Obj], topic_error: str,
                  spec: StockStreamSpec, ns: str, previous: Mapping[str, Any],
                  now: datetime) -> Verdict:
        fields: dict[str, Any] = {}
        stuck = (waiting_reasons(pods, stuck_only=True)
                 if decision.step == "WaitingForProcessesReady" else "")
        if decision.step == "ProcessesNotReady" or stuck:
            waiting = stuck or waiting_reasons(pods)
            fields = {"degraded_reason": "ProcessesNotReady", "degraded_message": (
                f"{v.ready}/{v.desired} dataflow processes ready"
                f"{': ' + waiting if waiting else ''}; the cluster pauses until all are "
                "back (kubectl describe pod / kubectl logs)")}
        elif topic_error:
            fields = {"degraded_reason": "BrokerUnreachable", "degraded_message": topic_error}
        if self.check_freshness:
            running = ready_since(previous) if v.lifecycle == Lifecycle.RUNNING else None
            try:
                password = (self.kube.ref_value(ns, "Secret", spec.redis.password_secret)
                            if spec.redis.password_secret else None)
                ends = freshness.read_window_ends(qualify_url(spec.redis.url, ns), password,
                                                  spec.redis.username)
            except (redis.RedisError, OSError, ValueError) as exc:
                if not fields and running is not None:
                    fields = {"degraded_reason": "RedisUnreachable", "degraded_message": (
                        f"cannot read the leaderboards from {spec.redis.url} "
                        f"({type(exc).__name__}); check spec.redis and the Redis pod")}
            else:
                fresh = freshness.evaluate(previous.get("leaderboards") or {}, ends, now,
                                           spec.monitoring.stale_after_s, running)
                fields["leaderboards"] = fresh.to_status()
                if fresh.stale and "degraded_reason" not in fields:
                    fields.update(degraded_reason="LeaderboardsStale",
                                  degraded_message=fresh.reason)
        return replace(v, **fields) if fields else v


def _condition(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    return next((dict(c) for c in status.get("conditions") or [] if c.get("type") == type_), {})
