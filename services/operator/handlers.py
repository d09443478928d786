"""kopf registrations: one daemon per StockStream runs reconcile passes (serialised per
resource), waking at once when the spec's generation changes; a delete handler removes
what the operator created, keeping the recovery volumes unless the spec says otherwise.

The daemon exports the StockStream's metrics (stockstream/metrics.py, labels namespace and
name): passes by result and their duration, rollbacks (at 0 from the start), the lifecycle
state and when it was entered; they are removed when the StockStream is deleted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import kopf

from services.operator import objects
from services.operator.kube import Kube
from services.operator.lifecycle import Lifecycle
from services.operator.model import GROUP, PLURAL, VERSION, InvalidSpecError, parse_spec
from services.operator.reconcile import PRUNED_KINDS, Reconciler
from services.operator.settings import OperatorSettings
from stockstream.metrics import (
    OPERATOR_LIFECYCLE,
    OPERATOR_LIFECYCLE_SINCE,
    OPERATOR_RECONCILE_DURATION,
    OPERATOR_RECONCILES,
    OPERATOR_ROLLBACKS,
)

log = logging.getLogger(__name__)

STATE: dict[str, Any] = {}  # "kube", "settings": set by configure() before kopf starts

# Every metric with a series per StockStream (labels namespace, name): removed on delete.
PER_STOCKSTREAM = (
    OPERATOR_LIFECYCLE,
    OPERATOR_LIFECYCLE_SINCE,
    OPERATOR_RECONCILES,
    OPERATOR_RECONCILE_DURATION,
    OPERATOR_ROLLBACKS,
)
RESULTS = ("ok", "error")
PROGRESSING = frozenset(
    {str(Lifecycle.DEPLOYING), str(Lifecycle.RESCALING), str(Lifecycle.UPGRADING)}
)


def configure(
    kube: Kube, settings: OperatorSettings, guard: Callable[[], None] = lambda: None
) -> None:
    """`guard`: before every pass and delete (leader election: exits unless leading)."""
    STATE["kube"] = kube
    STATE["guard"] = guard
    STATE["settings"] = settings
    STATE["reconciler"] = Reconciler(kube, check_freshness=settings.check_freshness)


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    prefix = GROUP
    settings.persistence.finalizer = f"{prefix}/operator"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    settings.posting.enabled = False  # our own Events, one per transition
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 16  # reconcile passes of several resources at once


def _export_counters(namespace: str, name: str) -> None:
    """The StockStream's counters and histogram at 0 before its first pass: a labelled series
    exists only from its first use, and a rate over a missing one is no data (the
    dashboard's Operator row, the reconcile-error and rollback alerts). The rollbacks are
    counted by the rollback step, with the same labels."""
    for result in RESULTS:
        OPERATOR_RECONCILES.labels(namespace=namespace, name=name, result=result)
    OPERATOR_RECONCILE_DURATION.labels(namespace=namespace, name=name)
    OPERATOR_ROLLBACKS.labels(namespace=namespace, name=name)


def _export(namespace: str, name: str, lifecycle: str, since: float) -> None:
    for state in Lifecycle:
        OPERATOR_LIFECYCLE.labels(namespace=namespace, name=name, lifecycle=str(state)).set(
            1 if str(state) == lifecycle else 0
        )
    OPERATOR_LIFECYCLE_SINCE.labels(namespace=namespace, name=name).set(since)


def _passed(namespace: str, name: str, started: float, ok: bool) -> None:
    """Count one pass that began at monotonic time `started`, and its duration."""
    OPERATOR_RECONCILE_DURATION.labels(namespace=namespace, name=name).observe(
        time.monotonic() - started
    )
    OPERATOR_RECONCILES.labels(namespace=namespace, name=name, result="ok" if ok else "error").inc()


def lifecycle_since(status: Mapping[str, Any], carried: bool, now: float) -> float:
    """Unix time at which the StockStream entered the lifecycle of `status`: `now` when this
    process saw it move there. A state `carried` over from before this operator process (its
    first pass found it already there) began earlier: a transitional one when the
    StockStream started progressing (the Progressing condition, which a restart or a
    handover does not lose), another one at `now` (nothing records it)."""
    if carried and status.get("lifecycle") in PROGRESSING:
        for cond in status.get("conditions") or []:
            if cond.get("type") == "Progressing" and cond.get("status") == "True":
                try:
                    return datetime.fromisoformat(cond["lastTransitionTime"]).timestamp()
                except (KeyError, TypeError, ValueError):
                    break
    return now


def tracked_lifecycle(
    tracked: tuple[str, float] | None, status: Mapping[str, Any], before: Mapping[str, Any]
) -> tuple[str, float]:
    """(lifecycle, since) to export after a pass that returned `status`; `tracked`: the pair
    exported last (None before this process's first successful pass), `before`: the status
    the pass started from."""
    lifecycle = str(status.get("lifecycle", ""))
    if tracked is not None and tracked[0] == lifecycle:
        return tracked
    carried = tracked is None and before.get("lifecycle") == lifecycle
    return lifecycle, lifecycle_since(status, carried=carried, now=time.time())


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=30.0)
async def run(
    stopped: kopf.DaemonStopped, body: kopf.Body, name: str, namespace: str | None, **_: Any
) -> None:
    """Reconcile every `reconcile_interval_s`, at once after a spec change. The status this
    daemon wrote is the `previous` of its next pass (the watch may lag behind). Async, so
    that an idle resource holds no thread; a pass (blocking client calls) runs in one."""
    assert namespace is not None  # StockStream is namespaced
    reconciler: Reconciler = STATE["reconciler"]
    interval = STATE["settings"].reconcile_interval_s
    previous: dict[str, Any] = dict(body.get("status") or {})
    tracked: tuple[str, float] | None = None  # (lifecycle, since) exported last
    _export_counters(namespace, name)
    while not stopped:
        if body.metadata.get("deletionTimestamp"):
            break  # the delete handler takes over; never re-create what it removes
        generation = body.metadata.get("generation")
        STATE["guard"]()
        started = time.monotonic()
        try:
            status = await asyncio.to_thread(reconciler.reconcile, body, previous)
        except Exception:  # one failed pass must not end the daemon; the next one retries
            _passed(namespace, name, started, ok=False)
            log.exception("reconcile failed", extra={"object": name, "namespace": namespace})
        else:
            _passed(namespace, name, started, ok=True)
            tracked = tracked_lifecycle(tracked, status, previous)
            previous = status
            _export(namespace, name, *tracked)
        deadline = time.monotonic() + interval
        while not stopped and time.monotonic() < deadline:
            if body.metadata.get("generation") != generation:
                break
            await stopped.wait(0.2)
    if body.metadata.get("deletionTimestamp"):  # a pass that ended after the delete handler
        _forget(namespace, name)


def _forget(namespace: str, name: str) -> None:
    for metric in PER_STOCKSTREAM:
        metric.remove_by_labels({"namespace": namespace, "name": name})


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete(body: kopf.Body, name: str, namespace: str | None, **_: Any) -> None:
    """Delete what the operator created (without waiting for the garbage collector), and the
    recovery PVCs only if `dataflow.recovery.deleteVolumesOnDelete`."""
    assert namespace is not None  # StockStream is namespaced
    kube: Kube = STATE["kube"]
    STATE["guard"]()
    uid = body.metadata["uid"]
    sel = f"app.kubernetes.io/instance={name},app.kubernetes.io/managed-by={objects.MANAGED_BY}"
    for api_version, kind in PRUNED_KINDS:
        for obj in kube.list(api_version, kind, namespace, sel):
            if any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or []):
                kube.delete(api_version, kind, obj["metadata"]["name"], namespace)
    try:
        spec = parse_spec(body.get("spec") or {})
        delete_volumes = spec.dataflow.recovery.delete_volumes_on_delete
    except InvalidSpecError:  # only without the CRD's schema or CEL rules: keep the volumes
        delete_volumes = False
    if delete_volumes:
        for pvc in kube.list(
            "v1", "PersistentVolumeClaim", namespace, objects.selector_text(name, "dataflow")
        ):
            kube.delete("v1", "PersistentVolumeClaim", pvc["metadata"]["name"], namespace)
    _forget(namespace, name)
    log.info(
        "deleted",
        extra={"object": name, "namespace": namespace, "volumes_kept": not delete_volumes},
    )
