"""The operator's Kubernetes I/O through the official client's DynamicClient: server-side
apply of desired objects (a no-op apply writes nothing), reads, deletes, status patches and
Events. Everything else in the operator is pure."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, UnprocessibleEntityError

from services.operator.model import API_VERSION, KIND, SecretKeyRef
from stockstream.metrics import OPERATOR_WRITES

log = logging.getLogger(__name__)

FIELD_MANAGER = "stockstream-operator"
MERGE = "application/merge-patch+json"

Obj = dict[str, Any]


class RefusedError(ValueError):
    """The API server refused a generated object as invalid (422): says which and why, e.g.
    a malformed affinity in spec.podTemplate, which the CRD keeps as given."""


def api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig."""
    try:
        config.load_incluster_config()
        return client.ApiClient()
    except config.ConfigException:
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        return client.ApiClient(cfg)


class Kube:
    """Thin typed wrapper of the DynamicClient for one operator."""

    def __init__(
        self,
        api: client.ApiClient,
        guard: Callable[[], None] = lambda: None,
        instance: str = FIELD_MANAGER,
    ) -> None:
        """`guard` runs before every write (leader election: exits unless the Lease is held);
        `instance`: the Events' reportingInstance (the replica's identity)."""
        self._dyn = DynamicClient(api)
        self._guard = guard
        self._instance = instance

    def _res(self, api_version: str, kind: str) -> Any:
        return self._dyn.resources.get(api_version=api_version, kind=kind)

    def apply(self, obj: Obj, namespace: str, *, dry_run: bool = False) -> Obj:
        """Server-side apply `obj` (owned fields only; conflicts forced: the operator owns
        these objects). `dry_run`: validated and admitted by the API server, not stored.
        Raises `RefusedError` when the API server finds `obj` invalid."""
        res = self._res(obj["apiVersion"], obj["kind"])
        self._guard()
        name = obj["metadata"]["name"]
        before = None if dry_run else self.get(obj["apiVersion"], obj["kind"], name, namespace)
        try:
            out = self._dyn.server_side_apply(
                res,
                body=obj,
                namespace=namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                dry_run="All" if dry_run else None,
            )
        except UnprocessibleEntityError as exc:
            raise RefusedError(
                f"the API server refused the {obj['kind']} {name}: {exc.summary()}"
            ) from exc
        result: Obj = out.to_dict()
        if dry_run:
            return result
        old_rv = (before or {}).get("metadata", {}).get("resourceVersion")
        if old_rv != result["metadata"]["resourceVersion"]:
            OPERATOR_WRITES.labels(kind=obj["kind"]).inc()
            log.info(
                "applied",
                extra={
                    "kind": obj["kind"],
                    "object": obj["metadata"]["name"],
                    "namespace": namespace,
                    "new_object": before is None,
                },
            )
        return result

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Obj | None:
        try:
            out: Obj = self._res(api_version, kind).get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None
        return out

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[Obj]:
        out = self._res(api_version, kind).get(namespace=namespace, label_selector=selector)
        return [item.to_dict() for item in out.items]

    def patch(self, api_version: str, kind: str, name: str, namespace: str, body: Obj) -> Obj:
        res = self._res(api_version, kind)
        self._guard()
        out: Obj = res.patch(
            body=body,
            name=name,
            namespace=namespace,
            content_type=MERGE,
            field_manager=FIELD_MANAGER,
        ).to_dict()
        OPERATOR_WRITES.labels(kind=kind).inc()
        log.info("patched", extra={"kind": kind, "object": name, "namespace": namespace})
        return out

    def delete(self, api_version: str, kind: str, name: str, namespace: str) -> bool:
        self._guard()
        try:
            self._res(api_version, kind).delete(
                name=name, namespace=namespace, body={"propagationPolicy": "Background"}
            )
        except NotFoundError:
            return False
        OPERATOR_WRITES.labels(kind=kind).inc()
        log.info("deleted", extra={"kind": kind, "object": name, "namespace": namespace})
        return True

    def patch_status(self, name: str, namespace: str, status: Obj) -> Obj:
        res = self._res(API_VERSION, KIND).subresources["status"]
        self._guard()
        out: Obj = res.patch(
            body={"status": status},
            name=name,
            namespace=namespace,
            content_type=MERGE,
            field_manager=FIELD_MANAGER,
        ).to_dict()
        OPERATOR_WRITES.labels(kind=f"{KIND}/status").inc()
        log.info("status written", extra={"object": name, "namespace": namespace})
        return out

    def ref_value(self, namespace: str, kind: str, ref: SecretKeyRef) -> str | None:
        """The value of `ref.key` in Secret/ConfigMap `ref.name`, or None if either is absent."""
        obj = self.get("v1", kind, ref.name, namespace)
        if obj is None:
            return None
        if kind == "Secret":
            raw = (obj.get("data") or {}).get(ref.key)
            return base64.b64decode(raw).decode() if raw is not None else None
        value = (obj.get("data") or {}).get(ref.key)
        return str(value) if value is not None else None

    def event(self, owner: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about the StockStream `owner` (`type_` Normal or Warning)."""
        meta = owner["metadata"]
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:12]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": self._instance,
        }
        self._guard()
        try:
            self._res("v1", "Event").create(body=body, namespace=meta["namespace"])
        except client.ApiException as exc:  # an Event is best effort, never fatal
            log.warning("event not posted", extra={"reason": reason, "error": str(exc)})
        log.info(
            "event",
            extra={
                "type": type_,
                "reason": reason,
                "event_message": message,
                "object": meta["name"],
                "namespace": meta["namespace"],
            },
        )
