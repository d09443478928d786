"""Desired objects of the feed (pure): the replay producer, or the sharded ingestion
StatefulSet with its least-privilege RBAC, or nothing (`provider: none`)."""

from __future__ import annotations

from typing import Any

from services.operator.model import StockStreamSpec
from services.operator.objects import (
    METRICS_PORT,
    POD_SECURITY,
    SCRAPE_ANNOTATIONS,
    Obj,
    digest,
    hardened,
    labels,
    metrics_service,
    selector,
)
from services.operator.pod_template import merged_into

SYMBOLS_DIR = "/etc/stockstream/symbols"


def _common_env(spec: StockStreamSpec) -> list[Obj]:
    b = spec.broker
    env: list[Obj] = [
        {"name": "KAFKA_BOOTSTRAP_SERVERS", "value": b.bootstrap_servers},
        {"name": "TICKS_TOPIC", "value": b.topic},
        {"name": "DLQ_TOPIC", "value": b.dlq_topic},
        {"name": "METRICS_PORT", "value": str(METRICS_PORT)},
    ]
    if b.config_secret:
        env.append(
            {
                "name": "KAFKA_EXTRA_CONFIG",
                "valueFrom": {
                    "secretKeyRef": {"name": b.config_secret.name, "key": b.config_secret.key}
                },
            }
        )
    return env


def _replay_env(spec: StockStreamSpec) -> list[Obj]:
    f = spec.feed
    env = [
        {"name": "REPLAY_FILE", "value": f.replay.file},
        {"name": "REPLAY_SPEED", "value": str(f.replay.speed)},
        {"name": "REPLAY_LOOP", "value": "true" if f.replay.loop else "false"},
    ]
    if f.replay.from_:
        env.append({"name": "REPLAY_FROM", "value": f.replay.from_})
    return env


def _pod(
    instance: str,
    spec: StockStreamSpec,
    component: str,
    *,
    command: list[str],
    env: list[Obj],
    extra: Obj | None = None,
) -> Obj:
    container = hardened(
        {
            "name": component,
            "image": spec.image,
            "imagePullPolicy": spec.image_pull_policy,
            "command": command,
            "env": env,
            "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
            "resources": {
                "requests": {"cpu": "50m", "memory": "96Mi"},
                "limits": {"cpu": "500m", "memory": "256Mi"},
            },
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - emptyDir
        }
    )
    pod: Obj = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": 40,
        "securityContext": dict(POD_SECURITY),
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    if extra:
        extra_mounts = extra.pop("volumeMounts", [])
        container["volumeMounts"].extend(extra_mounts)
        pod["volumes"].extend(extra.pop("volumes", []))
        pod.update(extra)
    return merged_into(
        {
            "metadata": {
                "labels": labels(instance, component),
                "annotations": dict(SCRAPE_ANNOTATIONS),
            },
            "spec": pod,
        },
        spec.pod_template,
    )


def replay_objects(instance: str, spec: StockStreamSpec) -> list[Obj]:
    """services.replay: a Deployment when looping (a continuous feed), else a Job named after
    its content (a Job's template is immutable) that publishes the slice once."""
    f = spec.feed
    env = _common_env(spec) + _replay_env(spec)
    if f.replay.limit is not None:
        env.append({"name": "REPLAY_LIMIT", "value": str(f.replay.limit)})
    if f.symbols:
        env.append({"name": "REPLAY_SYMBOLS", "value": ",".join(f.symbols)})
    pod = _pod(instance, spec, "replay", command=["python", "-m", "services.replay"], env=env)
    service = metrics_service(instance, "replay", f"{instance}-replay")
    if f.replay.loop:
        pod["spec"]["containers"][0]["readinessProbe"] = {
            "httpGet": {"path": "/readyz", "port": "metrics"},
            "periodSeconds": 10,
        }
        pod["spec"]["containers"][0]["livenessProbe"] = {
            "httpGet": {"path": "/healthz", "port": "metrics"},
            "initialDelaySeconds": 10,
            "periodSeconds": 15,
        }
        return [
            service,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"{instance}-replay", "labels": labels(instance, "replay")},
                "spec": {
                    "replicas": 0 if spec.suspend else 1,
                    "strategy": {"type": "Recreate"},
                    "selector": {"matchLabels": selector(instance, "replay")},
                    "template": pod,
                },
            },
        ]
    pod["spec"]["restartPolicy"] = "OnFailure"
    return [
        service,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": f"{instance}-replay-{digest(pod)}",
                "labels": labels(instance, "replay"),
            },
            "spec": {"backoffLimit": 10, "suspend": spec.suspend, "template": pod},
        },
    ]


def ingest_objects(instance: str, spec: StockStreamSpec) -> list[Obj]:
    """services.ingest sharded over `feed.replicas` pods; its Role reads only its own
    StatefulSet (membership=kubernetes)."""
    f = spec.feed
    name = f"{instance}-ingest"
    lab = labels(instance, "ingest")
    objs: list[Obj] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "labels": lab},
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "labels": lab},
            "rules": [
                {
                    "apiGroups": ["apps"],
                    "resources": ["statefulsets"],
                    "resourceNames": [name],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "labels": lab},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name}],
        },
        {**metrics_service(instance, "ingest", name)},
    ]
    objs[-1]["spec"]["clusterIP"] = "None"
    objs[-1]["spec"].pop("type")
    env = [
        *_common_env(spec),
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "MEMBERSHIP", "value": "kubernetes"},
        {"name": "STATEFULSET_NAME", "value": name},
        {"name": "PROVIDER", "value": "replay" if f.provider == "ingest-replay" else f.provider},
        *_replay_env(spec),
        {"name": "SIMULATE_RATE", "value": str(f.simulate.rate)},
        {"name": "SIMULATE_SYMBOLS", "value": str(f.simulate.symbols)},
    ]
    extra: dict[str, Any] = {"serviceAccountName": name, "automountServiceAccountToken": True}
    symbols_cm = f.symbols_config_map
    if f.symbols:
        cm = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{instance}-symbols", "labels": lab},
            "data": {"symbols.txt": "\n".join(f.symbols) + "\n"},
        }
        objs.append(cm)
        extra["volumes"] = [{"name": "symbols", "configMap": {"name": f"{instance}-symbols"}}]
        env.append({"name": "SYMBOLS_FILE", "value": f"{SYMBOLS_DIR}/symbols.txt"})
    elif symbols_cm is not None:
        extra["volumes"] = [{"name": "symbols", "configMap": {"name": symbols_cm.name}}]
        env.append({"name": "SYMBOLS_FILE", "value": f"{SYMBOLS_DIR}/{symbols_cm.key}"})
    if "volumes" in extra:
        extra["volumeMounts"] = [{"name": "symbols", "mountPath": SYMBOLS_DIR, "readOnly": True}]
    if f.finnhub_token_secret and f.provider.startswith("finnhub"):
        env.append(
            {
                "name": "FINNHUB_API_KEY",
                "valueFrom": {
                    "secretKeyRef": {
                        "name": f.finnhub_token_secret.name,
                        "key": f.finnhub_token_secret.key,
                    }
                },
            }
        )
    pod = _pod(
        instance, spec, "ingest", command=["python", "-m", "services.ingest"], env=env, extra=extra
    )
    container = pod["spec"]["containers"][0]
    container["readinessProbe"] = {
        "httpGet": {"path": "/readyz", "port": "metrics"},
        "periodSeconds": 10,
    }
    container["livenessProbe"] = {
        "httpGet": {"path": "/healthz", "port": "metrics"},
        "initialDelaySeconds": 10,
        "periodSeconds": 15,
    }
    objs.append(
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": name, "labels": lab},
            "spec": {
                "serviceName": name,
                "replicas": 0 if spec.suspend else f.replicas,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": selector(instance, "ingest")},
                "template": pod,
            },
        }
    )
    return objs


def feed_objects(instance: str, spec: StockStreamSpec) -> list[Obj]:
    """The feed's desired objects for the spec's provider."""
    if spec.feed.provider == "none":
        return []
    if spec.feed.provider == "replay":
        return replay_objects(instance, spec)
    return ingest_objects(instance, spec)
