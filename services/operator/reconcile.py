"""One reconcile pass of a StockStream: checks, topics, owned objects, the dataflow's next
lifecycle step, pruning, freshness, then the status and an Event per transition.

A pass is idempotent: it reads what exists, applies the desired objects (a server-side apply
that changes nothing writes nothing) and takes at most one lifecycle step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import redis
from confluent_kafka import KafkaException

from services.operator import feed, freshness, objects, rollback
from services.operator.checks import reference_problems
from services.operator.kube import Kube, Obj, RefusedError
from services.operator.lifecycle import Action, Decision, Lifecycle, Observed, decide
from services.operator.model import InvalidSpecError, StockStreamSpec, parse_spec
from services.operator.observed import (
    pod_ready,
    qualify,
    qualify_url,
    read_readyz,
    template_processes,
    waiting_reasons,
)
from services.operator.status import RUNNING, Verdict, build, ready_since
from services.operator.topics import Admin, TopicAction, decide_topic
from stockstream.metrics import OPERATOR_ROLLBACKS

log = logging.getLogger(__name__)

PRUNED_KINDS = (
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("policy/v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
)


@dataclass
class Pass:
    """What one pass found, for the status and the Events."""

    verdict: Verdict
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    stability: rollback.Observation | None = None  # None: a Failed pass (nothing tracked)


class Reconciler:
    """Reconciles StockStreams through `kube`; broker admin clients are cached."""

    def __init__(self, kube: Kube, check_freshness: bool = True) -> None:
        self.kube = kube
        self.check_freshness = check_freshness
        self._admins: dict[str, Admin] = {}

    @staticmethod
    def why_not_ready(pod: Obj) -> str | None:
        """A running, unready dataflow process's own reason (its /readyz body)."""
        return read_readyz(pod, objects.METRICS_PORT)

    # -- entry point -------------------------------------------------------------------
    def reconcile(
        self, body: Mapping[str, Any], previous: Mapping[str, Any], now: datetime | None = None
    ) -> dict[str, Any]:
        """One pass; returns the status written (or unchanged)."""
        now = now or datetime.now(UTC)
        result = self._pass(body, previous, now)
        status = build(previous, result.verdict, now)
        self._track(body, previous, result, status, now)
        if result.verdict.lifecycle != previous.get("lifecycle"):
            kind = "Warning" if result.verdict.lifecycle == Lifecycle.FAILED else "Normal"
            result.events.insert(
                0,
                (
                    kind,
                    str(result.verdict.lifecycle),
                    f"lifecycle {previous.get('lifecycle') or '(new)'} -> "
                    f"{result.verdict.lifecycle}: {status['message']}",
                ),
            )
        old_degraded = _condition(previous, "Degraded")
        new_degraded = _condition(status, "Degraded")
        if new_degraded.get("status") == "True" and (
            old_degraded.get("reason") != new_degraded.get("reason")
            or old_degraded.get("status") != "True"
        ):
            result.events.append(("Warning", new_degraded["reason"], new_degraded["message"]))
        elif old_degraded.get("status") == "True" and new_degraded.get("status") != "True":
            result.events.append(("Normal", "Recovered", f"no longer {old_degraded['reason']}"))
        meta = body["metadata"]
        if any(previous.get(k) != v for k, v in status.items()):  # None removes a field
            self.kube.patch_status(meta["name"], meta["namespace"], status)
        for type_, reason, message in result.events:
            self.kube.event(body, type_, reason, message)
        return status

    # -- the pass ----------------------------------------------------------------------
    def _pass(self, body: Mapping[str, Any], previous: Mapping[str, Any], now: datetime) -> Pass:
        meta = body["metadata"]
        name, ns, gen = meta["name"], meta["namespace"], int(meta.get("generation", 0))
        sel = objects.selector_text(name, "dataflow")
        sts_name = objects.names(name)["statefulset"]
        sts = self.kube.get("apps/v1", "StatefulSet", sts_name, ns)
        pods = self.kube.list("v1", "Pod", ns, sel)
        ready = sum(1 for p in pods if pod_ready(p))
        base = Verdict(
            generation=gen,
            lifecycle=Lifecycle.DEPLOYING,
            step="",
            ready=ready,
            desired=0,
            alive=len(pods),
            selector=sel,
        )
        raw = body.get("spec") or {}
        try:
            spec = parse_spec(raw)
        except InvalidSpecError as e:  # only without the CRD's schema or CEL rules
            return self._failed(base, "InvalidSpec", str(e))
        problems = reference_problems(
            spec, lambda kind, ref: self.kube.ref_value(ns, kind, ref) is not None
        )
        if problems:
            return self._failed(base, "InvalidSpec", "; ".join(problems))
        stable_spec = _stable_spec(previous)
        rolled_back = rollback.is_rolled_back(previous, gen) and stable_spec is not None
        # The dataflow cluster of the last stable spec after a rollback; the topics and the
        # feed always follow the resource's spec (a finished replay is never run again).
        cluster = stable_spec if rolled_back and stable_spec else spec
        base = replace(base, desired=0 if cluster.suspend else cluster.dataflow.processes)

        topic_status, topic_error, refused, events = self._topics(spec, ns)
        if refused:
            return self._failed(base, "TopicPartitionsRefused", refused, topic_status)
        if topic_error and sts is None:
            return Pass(
                replace(
                    base,
                    step="WaitingForBroker",
                    degraded_reason="BrokerUnreachable",
                    degraded_message=topic_error,
                    topic=topic_status,
                ),
                events,
            )

        desired_hash = objects.cluster_hash(name, cluster)
        prev_life = previous.get("lifecycle")
        decision = decide(
            Observed(
                desired_hash=desired_hash,
                desired_processes=cluster.dataflow.processes,
                suspend=cluster.suspend,
                sts_exists=sts is not None,
                sts_hash=((sts or {}).get("metadata", {}).get("annotations") or {}).get(
                    objects.HASH_ANNOTATION
                ),
                sts_replicas=int((sts or {}).get("spec", {}).get("replicas") or 0),
                sts_processes=template_processes(sts) if sts else 0,
                pods_alive=len(pods),
                pods_ready=ready,
                previous=_previous_lifecycle(prev_life),
            )
        )
        try:  # the API server refuses what the CRD keeps as given (e.g. a malformed affinity)
            for obj in objects.dataflow_objects(name) + feed.feed_objects(name, spec):
                self.kube.apply(objects.owned(obj, body), ns)
            sts = self._act(decision, body=body, name=name, ns=ns, spec=cluster, sts=sts) or sts
        except RefusedError as e:
            return self._failed(base, "InvalidSpec", str(e), topic_status)
        if decision.action != Action.NONE:
            events.append(
                (
                    "Normal",
                    decision.step,
                    f"{decision.action}: {decision.lifecycle}, "
                    f"{cluster.dataflow.processes} processes, "
                    f"cluster {desired_hash}{' (suspended)' if cluster.suspend else ''}",
                )
            )
        self._prune(body, name, ns, spec, sts)
        life = decision.lifecycle
        if rolled_back and life == Lifecycle.RUNNING:
            life = Lifecycle.ROLLED_BACK
        verdict = replace(
            base,
            lifecycle=life,
            step=decision.step,
            topic=topic_status,
            cluster_hash=desired_hash if decision.action in (Action.CREATE, Action.START) else None,
        )
        stability = rollback.Observation(
            instance=name,
            generation=gen,
            spec_raw=raw,
            spec=spec,
            stable_spec=stable_spec,
            rolled_back=rolled_back,
            status={},
            feed_finished=self._feed_finished(name, ns, spec),
        )
        return Pass(
            self._degraded(
                verdict,
                decision,
                pods=pods,
                topic_error=topic_error,
                spec=cluster,
                ns=ns,
                previous=previous,
                now=now,
            ),
            events,
            stability,
        )

    def _track(
        self,
        body: Mapping[str, Any],
        previous: Mapping[str, Any],
        result: Pass,
        status: dict[str, Any],
        now: datetime,
    ) -> None:
        """Stable spec, pending change and rollback (rollback.py) into `status`; a rollback
        decided now takes effect from the next pass."""
        meta = body["metadata"]
        if result.stability is None:  # a Failed pass changes nothing: keep what was known
            status.update({k: previous[k] for k in rollback.FIELDS if k in previous})
            return
        outcome = rollback.track(previous, replace(result.stability, status=status), now)
        status.update(outcome.fields)
        status["conditions"].append(
            rollback.rolled_back_condition(previous, outcome.fields, result.verdict.generation, now)
        )
        result.events.extend(outcome.events)
        if outcome.rolled_back_now:
            OPERATOR_ROLLBACKS.labels(namespace=meta["namespace"], name=meta["name"]).inc()
            log.warning(
                "rolled back",
                extra={
                    "object": meta["name"],
                    "namespace": meta["namespace"],
                    "reason": outcome.fields["rollback"]["reason"],
                },
            )

    def _feed_finished(self, name: str, ns: str, spec: StockStreamSpec) -> bool:
        """Whether the feed published all it ever will (a non-looping replay's Job
        succeeded): no more windows are to be expected."""
        for obj in feed.feed_objects(name, spec):
            if obj["kind"] == "Job":
                job = self.kube.get("batch/v1", "Job", obj["metadata"]["name"], ns) or {}
                return bool((job.get("status") or {}).get("succeeded"))
        return False

    def _failed(
        self, base: Verdict, reason: str, message: str, topic: Mapping[str, Any] | None = None
    ) -> Pass:
        return Pass(
            replace(
                base,
                lifecycle=Lifecycle.FAILED,
                step=reason,
                degraded_reason=reason,
                degraded_message=message,
                message=message,
                topic=topic,
            )
        )

    # -- topics ------------------------------------------------------------------------
    def _admin(self, spec: StockStreamSpec, ns: str) -> Admin:
        extra_raw = (
            self.kube.ref_value(ns, "Secret", spec.broker.config_secret)
            if spec.broker.config_secret
            else None
        )
        bootstrap = qualify(spec.broker.bootstrap_servers, ns)
        key = f"{bootstrap}|{extra_raw or ''}"
        if key not in self._admins:
            self._admins[key] = Admin(bootstrap, Admin.extra_from_json(extra_raw))
        return self._admins[key]

    def _topics(
        self, spec: StockStreamSpec, ns: str
    ) -> tuple[dict[str, Any] | None, str, str, list[tuple[str, str, str]]]:
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
            msg = (
                f"broker {b.bootstrap_servers} unreachable or refused the topic request "
                f"({type(exc).__name__}); check spec.broker.bootstrapServers and the broker"
            )
            log.warning("topic check failed", extra={"error": str(exc)})
            return None, msg, "", events
        return {"name": b.topic, "partitions": b.partitions}, "", "", events

    # -- dataflow ----------------------------------------------------------------------
    def _act(
        self,
        decision: Decision,
        *,
        body: Mapping[str, Any],
        name: str,
        ns: str,
        spec: StockStreamSpec,
        sts: Obj | None,
    ) -> Obj | None:
        target = 0 if spec.suspend else spec.dataflow.processes
        sts_name = objects.names(name)["statefulset"]
        if decision.action in (Action.CREATE, Action.START):
            self.kube.apply(objects.owned(objects.config_map(name, spec), body), ns)
            return self.kube.apply(objects.owned(objects.statefulset(name, spec, target), body), ns)
        if decision.action == Action.STOP:  # not for a template the API server refuses
            self.kube.apply(
                objects.owned(objects.statefulset(name, spec, target), body), ns, dry_run=True
            )
            return self.kube.patch(
                "apps/v1", "StatefulSet", sts_name, ns, {"spec": {"replicas": 0}}
            )
        if decision.action == Action.SCALE:
            return self.kube.patch(
                "apps/v1", "StatefulSet", sts_name, ns, {"spec": {"replicas": target}}
            )
        return sts

    def _prune(
        self, body: Mapping[str, Any], name: str, ns: str, spec: StockStreamSpec, sts: Obj | None
    ) -> None:
        """Delete this resource's objects that the spec no longer wants (e.g. the replay
        Deployment after a switch to ingest, dataflow ConfigMaps of past clusters)."""
        keep = {
            (o["kind"], o["metadata"]["name"])
            for o in objects.dataflow_objects(name) + feed.feed_objects(name, spec)
        }
        keep.add(("StatefulSet", objects.names(name)["statefulset"]))
        for src in (sts or {}).get("spec", {}).get("template", {}).get("spec", {}).get(
            "containers", [{}]
        )[0].get("envFrom") or []:
            keep.add(("ConfigMap", src["configMapRef"]["name"]))
        uid = body["metadata"]["uid"]
        sel = f"app.kubernetes.io/instance={name},app.kubernetes.io/managed-by={objects.MANAGED_BY}"
        for api_version, kind in PRUNED_KINDS:
            for obj in self.kube.list(api_version, kind, ns, sel):
                owners = obj["metadata"].get("ownerReferences") or []
                if (kind, obj["metadata"]["name"]) in keep or not any(
                    o.get("uid") == uid for o in owners
                ):
                    continue
                self.kube.delete(api_version, kind, obj["metadata"]["name"], ns)

    # -- degraded / freshness ----------------------------------------------------------
    def _degraded(
        self,
        v: Verdict,
        decision: Decision,
        *,
        pods: list[Obj],
        topic_error: str,
        spec: StockStreamSpec,
        ns: str,
        previous: Mapping[str, Any],
        now: datetime,
    ) -> Verdict:
        fields: dict[str, Any] = {}
        stuck = (
            waiting_reasons(pods, stuck_only=True)
            if decision.step == "WaitingForProcessesReady"
            else ""
        )
        if decision.step == "ProcessesNotReady" or stuck:
            waiting = stuck or waiting_reasons(pods, why_not_ready=self.why_not_ready)
            fields = {
                "degraded_reason": "ProcessesNotReady",
                "degraded_message": (
                    f"{v.ready}/{v.desired} dataflow processes ready"
                    f"{': ' + waiting if waiting else ''}; the cluster pauses until all are "
                    "back (kubectl describe pod / kubectl logs)"
                ),
            }
        elif topic_error:
            fields = {"degraded_reason": "BrokerUnreachable", "degraded_message": topic_error}
        if self.check_freshness:
            running = ready_since(previous) if v.lifecycle in RUNNING else None
            try:
                password = (
                    self.kube.ref_value(ns, "Secret", spec.redis.password_secret)
                    if spec.redis.password_secret
                    else None
                )
                ends = freshness.read_window_ends(
                    qualify_url(spec.redis.url, ns), password, spec.redis.username
                )
            except (redis.RedisError, OSError, ValueError) as exc:
                if not fields and running is not None:
                    fields = {
                        "degraded_reason": "RedisUnreachable",
                        "degraded_message": (
                            f"cannot read the leaderboards from {spec.redis.url} "
                            f"({type(exc).__name__}); check spec.redis and the Redis pod"
                        ),
                    }
            else:
                fresh = freshness.evaluate(
                    previous.get("leaderboards") or {},
                    ends,
                    now,
                    spec.monitoring.stale_after_s,
                    running,
                )
                fields["leaderboards"] = fresh.to_status()
                if fresh.stale and "degraded_reason" not in fields:
                    fields.update(
                        degraded_reason="LeaderboardsStale", degraded_message=fresh.reason
                    )
        return replace(v, **fields) if fields else v


def _condition(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    return next((dict(c) for c in status.get("conditions") or [] if c.get("type") == type_), {})


def _previous_lifecycle(raw: Any) -> Lifecycle | None:
    """status.lifecycle as the state machine sees it (RolledBack runs like Running)."""
    if raw == Lifecycle.ROLLED_BACK:
        return Lifecycle.RUNNING
    return Lifecycle(raw) if raw in set(Lifecycle) else None


def _stable_spec(previous: Mapping[str, Any]) -> StockStreamSpec | None:
    """status.stable.spec parsed (None if absent, or if this operator's model refuses it)."""
    raw = (previous.get("stable") or {}).get("spec")
    if not raw:
        return None
    try:
        return parse_spec(json.loads(raw))
    except (InvalidSpecError, ValueError) as exc:
        log.warning("stable spec unusable", extra={"error": str(exc)})
        return None
