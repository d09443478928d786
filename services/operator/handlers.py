"""kopf registrations: one daemon per StockStream runs reconcile passes (serialised per
resource), waking at once when the spec's generation changes; a delete handler removes
what the operator created, keeping the recovery volumes unless the spec says otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import kopf

from services.operator import objects
from services.operator.kube import Kube
from services.operator.lifecycle import Lifecycle
from services.operator.model import GROUP, PLURAL, VERSION, InvalidSpecError, parse_spec
from services.operator.reconcile import PRUNED_KINDS, Reconciler
from services.operator.settings import OperatorSettings
from stockstream.metrics import OPERATOR_LIFECYCLE, OPERATOR_RECONCILES, OPERATOR_ROLLBACKS

log = logging.getLogger(__name__)

STATE: dict[str, Any] = {}  # "kube", "settings": set by configure() before kopf starts


def configure(kube: Kube, settings: OperatorSettings,
              guard: Callable[[], None] = lambda: None) -> None:
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
        prefix=prefix, key="last-handled-configuration")
    settings.posting.enabled = False  # our own Events, one per transition
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 16  # reconcile passes of several resources at once


def _export(namespace: str, name: str, lifecycle: str) -> None:
    OPERATOR_ROLLBACKS.labels(namespace=namespace, name=name)  # 0 before the first
    for state in Lifecycle:
        OPERATOR_LIFECYCLE.labels(namespace=namespace, name=name, lifecycle=str(state)).set(
            1 if str(state) == lifecycle else 0)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=30.0)
async def run(stopped: kopf.DaemonStopped, body: kopf.Body, name: str, namespace: str | None,
              **_: Any) -> None:
    """Reconcile every `reconcile_interval_s`, at once after a spec change. The status this
    daemon wrote is the `previous` of its next pass (the watch may lag behind). Async, so
    that an idle resource holds no thread; a pass (blocking client calls) runs in one."""
    assert namespace is not None  # StockStream is namespaced
    reconciler: Reconciler = STATE["reconciler"]
    interval = STATE["settings"].reconcile_interval_s
    previous: dict[str, Any] = dict(body.get("status") or {})
    while not stopped:
        if body.metadata.get("deletionTimestamp"):
            return  # the delete handler takes over; never re-create what it removes
        generation = body.metadata.get("generation")
        STATE["guard"]()
        try:
            previous = await asyncio.to_thread(reconciler.reconcile, body, previous)
            OPERATOR_RECONCILES.labels(result="ok").inc()
            _export(namespace, name, previous.get("lifecycle", ""))
        except Exception:  # one failed pass must not end the daemon; the next one retries
            OPERATOR_RECONCILES.labels(result="error").inc()
            log.exception("reconcile failed", extra={"object": name, "namespace": namespace})
        deadline = time.monotonic() + interval
        while not stopped and time.monotonic() < deadline:
            if body.metadata.get("generation") != generation:
                break
            await stopped.wait(0.2)


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
        for pvc in kube.list("v1", "PersistentVolumeClaim", namespace,
                             objects.selector_text(name, "dataflow")):
            kube.delete("v1", "PersistentVolumeClaim", pvc["metadata"]["name"], namespace)
    present = _label_sets()
    for state in Lifecycle:
        if (namespace, name, str(state)) in present:
            OPERATOR_LIFECYCLE.remove(namespace, name, str(state))
    with contextlib.suppress(KeyError):  # never exported if no pass completed
        OPERATOR_ROLLBACKS.remove(namespace, name)
    log.info("deleted", extra={"object": name, "namespace": namespace,
                               "volumes_kept": not delete_volumes})


def _label_sets() -> set[tuple[str, ...]]:
    return {tuple(s.labels.values()) for m in OPERATOR_LIFECYCLE.collect() for s in m.samples}
