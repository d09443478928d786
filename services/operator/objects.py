"""Desired Kubernetes objects of the dataflow, as plain dicts (pure functions).

Every object carries the labels below; `owned()` adds the ownerReference to the StockStream.
The dataflow's settings go into an immutable ConfigMap named after their hash, so running
processes keep theirs until the coordinated restart starts new ones with the new ConfigMap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from services.operator.model import API_VERSION, KIND, SecretKeyRef, StockStreamSpec
from services.operator.pod_template import merged_into, overlay

Obj = dict[str, Any]

MANAGED_BY = "stockstream-operator"
HASH_ANNOTATION = "stockstream.io/cluster-hash"
# spec.restartNonce on the pod template: a new nonce is a new cluster hash (a restart).
RESTART_NONCE_ANNOTATION = "stockstream.io/restart-nonce"
TIMELY_PORT = 2101
METRICS_PORT = 9100
RECOVERY_DIR = "/var/lib/stockstream/recovery"


# Pod annotations of Prometheus' annotation-based discovery (observability/prometheus/
# prometheus.yml keeps annotated pods): every pod the operator creates serves /metrics on
# METRICS_PORT, and the pods carry app.kubernetes.io/instance, which Prometheus keeps as the
# `stockstream` label so that two StockStreams in one namespace stay apart.
SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(METRICS_PORT),
    "prometheus.io/path": "/metrics",
}


def labels(instance: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/part-of": "stockstream",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector(instance: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": instance}


def selector_text(instance: str, component: str) -> str:
    return ",".join(f"{k}={v}" for k, v in selector(instance, component).items())


def names(instance: str) -> dict[str, str]:
    return {
        "statefulset": f"{instance}-dataflow",
        "headless": f"{instance}-dataflow-headless",
        "metrics": f"{instance}-dataflow-metrics",
        "pdb": f"{instance}-dataflow",
    }


def owned(obj: Obj, owner: Mapping[str, Any]) -> Obj:
    """`obj` with a controller ownerReference to the StockStream `owner` (its body)."""
    meta = owner["metadata"]
    obj["metadata"]["ownerReferences"] = [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    return obj


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:10]


def with_password(url: str, env_name: str, username: str | None = None) -> str:
    """`redis://host:6379/0` -> `redis://USER:$(ENV)@host:6379/0` (Kubernetes expands it)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{username or ''}:$({env_name})@{host}", parts.path, "", ""))


def dataflow_settings(spec: StockStreamSpec) -> dict[str, str]:
    """Environment of every dataflow process (dataflows.leaders.settings)."""
    w, b, d = spec.windows, spec.broker, spec.dataflow
    return {
        "KAFKA_BOOTSTRAP_SERVERS": b.bootstrap_servers,
        "TICKS_TOPIC": b.topic,
        "DLQ_TOPIC": b.dlq_topic,
        "METRICS_PORT": str(METRICS_PORT),
        "LOG_LEVEL": "INFO",
        "WINDOW_LENGTHS_S": json.dumps(list(w.lengths_s)),
        "SLIDE_S": str(w.slide_s),
        "LATENESS_S": str(w.lateness_s),
        "TOP_N": str(w.top_n),
        "MAX_PRICE_WINDOW_S": str(w.max_price_window_s),
        "HISTORY_TTL_S": str(w.history_ttl_s),
        "RECOVERY_DIR": RECOVERY_DIR,
        "RECOVERY_PARTITIONS": str(d.recovery.partitions),
        "SNAPSHOT_INTERVAL_S": str(d.snapshot_interval_s),
        "WORKERS_PER_PROCESS": str(d.workers_per_process),
    }


def config_map(instance: str, spec: StockStreamSpec) -> Obj:
    """The immutable, content-named ConfigMap of the dataflow's settings."""
    data = dataflow_settings(spec)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{instance}-dataflow-{digest(data)}",
            "labels": labels(instance, "dataflow"),
        },
        "immutable": True,
        "data": data,
    }


def secret_env(spec: StockStreamSpec) -> list[Obj]:
    env: list[Obj] = []
    if spec.broker.config_secret:
        ref: SecretKeyRef = spec.broker.config_secret
        env.append(
            {
                "name": "KAFKA_EXTRA_CONFIG",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
    if spec.redis.password_secret:
        ref = spec.redis.password_secret
        env.append(
            {
                "name": "REDIS_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
        env.append(
            {
                "name": "REDIS_URL",
                "value": with_password(spec.redis.url, "REDIS_PASSWORD", spec.redis.username),
            }
        )
    else:
        env.append({"name": "REDIS_URL", "value": spec.redis.url})
    return env


def hardened(container: Obj) -> Obj:
    container["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    return container


POD_SECURITY: Obj = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def probes(startup_failures: int) -> Obj:
    """The dataflow container's probes (their semantics: dataflows/leaders/health.py).

    - startup, /healthz every 5 s: a process is live while it joins its cluster and restores
      its snapshot (it has not beaten yet), so this passes once the metrics server answers;
      `startup_failures` covers the interpreter's start.
    - readiness, /readyz every 10 s (3 failures): out of the Service about 30 s after the
      broker has been unreachable for READINESS_BROKER_DOWN_S (10 s); back at the first
      success once a consumer sees the broker.
    - liveness, /healthz every 15 s, 4 failures: restarted 45-60 s after the running loop has
      stood still for LIVENESS_STALL_S (60 s), so about 2 minutes of a stuck loop, never
      during a long snapshot restore. Waits for Redis or the broker are not stalls (they beat).
    """
    http = {"httpGet": {"path": "/healthz", "port": "metrics"}}
    return {
        "startupProbe": {**http, "periodSeconds": 5, "failureThreshold": startup_failures},
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": "metrics"},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
        },
        "livenessProbe": {**http, "periodSeconds": 15, "timeoutSeconds": 2, "failureThreshold": 4},
    }


def pod_template(instance: str, spec: StockStreamSpec, processes: int) -> Obj:
    """The dataflow pod template for a cluster of `processes` processes (with
    spec.dataflow.podTemplate over spec.podTemplate merged in)."""
    n = names(instance)
    env = [
        {"name": "DATAFLOW_REPLICAS", "value": str(processes)},
        {"name": "DATAFLOW_PORT", "value": str(TIMELY_PORT)},
        {"name": "DATAFLOW_STATEFULSET", "value": n["statefulset"]},
        {"name": "DATAFLOW_SERVICE", "value": n["headless"]},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        *secret_env(spec),
    ]
    container = hardened(
        {
            "name": "dataflow",
            "image": spec.image,
            "imagePullPolicy": spec.image_pull_policy,
            "command": ["dataflow-entrypoint"],
            "envFrom": [{"configMapRef": {"name": config_map(instance, spec)["metadata"]["name"]}}],
            "env": env,
            "ports": [
                {"name": "timely", "containerPort": TIMELY_PORT},
                {"name": "metrics", "containerPort": METRICS_PORT},
            ],
            **probes(startup_failures=24),
            "resources": spec.dataflow.resources.container(),
            "volumeMounts": [
                {"name": "recovery", "mountPath": RECOVERY_DIR},
                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - emptyDir
            ],
        }
    )
    annotations = dict(SCRAPE_ANNOTATIONS)
    if spec.restart_nonce is not None:
        annotations[RESTART_NONCE_ANNOTATION] = str(spec.restart_nonce)
    return merged_into(
        {
            "metadata": {"labels": labels(instance, "dataflow"), "annotations": annotations},
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 30,
                "securityContext": {
                    **POD_SECURITY,
                    "fsGroup": 10001,
                    "fsGroupChangePolicy": "OnRootMismatch",
                },
                "containers": [container],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
            },
        },
        overlay(spec.pod_template, spec.dataflow.pod_template),
    )


def cluster_hash(instance: str, spec: StockStreamSpec) -> str:
    """Identity of a dataflow cluster: changes exactly when processes must be replaced."""
    return digest(pod_template(instance, spec, spec.dataflow.processes))


def statefulset(instance: str, spec: StockStreamSpec, replicas: int) -> Obj:
    """The dataflow StatefulSet of the current spec, running `replicas` (0 or processes).

    OnDelete: a template change never replaces pods by itself; the operator stops all and
    starts all (coordinated restart). PVCs are kept on scale-down (the snapshots)."""
    n = names(instance)
    rec = spec.dataflow.recovery
    claim: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": rec.storage_size}},
    }
    if rec.storage_class_name:
        claim["storageClassName"] = rec.storage_class_name
    template = pod_template(instance, spec, spec.dataflow.processes)
    chash = digest(template)
    template["metadata"]["annotations"][HASH_ANNOTATION] = chash
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": n["statefulset"],
            "labels": labels(instance, "dataflow"),
            "annotations": {HASH_ANNOTATION: chash},
        },
        "spec": {
            "serviceName": n["headless"],
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Delete" if rec.delete_volumes_on_delete else "Retain",
                "whenScaled": "Retain",
            },
            "selector": {"matchLabels": selector(instance, "dataflow")},
            "template": template,
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "recovery", "labels": labels(instance, "dataflow")},
                    "spec": claim,
                }
            ],
        },
    }


def headless_service(instance: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names(instance)["headless"], "labels": labels(instance, "dataflow")},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,  # peers connect before any is ready
            "selector": selector(instance, "dataflow"),
            "ports": [{"name": "timely", "port": TIMELY_PORT, "targetPort": "timely"}],
        },
    }


def metrics_service(instance: str, component: str, name: str) -> Obj:
    """A Service in front of the component's /metrics (for people and port-forwards;
    Prometheus scrapes the pods themselves, see SCRAPE_ANNOTATIONS)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels(instance, component)},
        "spec": {
            "type": "ClusterIP",
            "selector": selector(instance, component),
            "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"}],
        },
    }


def pdb(instance: str) -> Obj:
    """At most one dataflow process voluntarily evicted at a time (a lost process pauses
    the whole cluster until it is back)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": names(instance)["pdb"], "labels": labels(instance, "dataflow")},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(instance, "dataflow")}},
    }


def dataflow_objects(instance: str) -> list[Obj]:
    """The dataflow objects that do not depend on the cluster generation."""
    n = names(instance)
    return [
        headless_service(instance),
        metrics_service(instance, "dataflow", n["metrics"]),
        pdb(instance),
    ]
