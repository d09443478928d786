"""The `StockStream` CustomResourceDefinition: the one source of truth of the API.

`python -m services.operator.crd` writes it to `deploy/kustomize/operator/install/crd.yaml`
(a test checks that the file is up to date). Validation that a schema cannot express is
in CEL rules (`x-kubernetes-validations`), checked by the API server before anything
reaches the operator; `checks.py` repeats them for clear status messages.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from services.operator.model import GROUP, KIND, PLURAL, PROVIDERS, SSE_FILE, VERSION
from stockstream.cli import check_arguments

CRD_PATH = Path(__file__).resolve().parents[2] / "deploy/kustomize/operator/install/crd.yaml"

Schema = dict[str, Any]


def _int(default: int, minimum: int, maximum: int, doc: str) -> Schema:
    return {"type": "integer", "default": default, "minimum": minimum, "maximum": maximum,
            "description": doc}


def _ref(doc: str, default_key: str) -> Schema:
    return {
        "type": "object",
        "description": doc,
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "maxLength": 253},
            "key": {"type": "string", "default": default_key, "maxLength": 253},
        },
    }


def _immutable(doc: str) -> list[Schema]:
    return [{"rule": "self == oldSelf", "message": f"{doc} is immutable"}]


RECOVERY: Schema = {
    "type": "object",
    "default": {},
    "description": "Recovery volumes (one PVC per process) holding the Bytewax snapshots.",
    "properties": {
        "storageSize": {"type": "string", "default": "1Gi", "maxLength": 32,
                        "x-kubernetes-validations": _immutable("storageSize")},
        "storageClassName": {"type": "string", "maxLength": 253,
                             "x-kubernetes-validations": _immutable("storageClassName")},
        "partitions": {**_int(12, 1, 1024, "Recovery partitions, created once; at least "
                              "the most processes the dataflow will ever run."),
                       "x-kubernetes-validations": _immutable("partitions")},
        "deleteVolumesOnDelete": {"type": "boolean", "default": False,
                                  "description": "Delete the recovery PVCs with the resource."},
    },
}

DATAFLOW: Schema = {
    "type": "object",
    "default": {},
    "properties": {
        "processes": _int(2, 1, 64, "Bytewax processes (pods); the scale subresource."),
        "workersPerProcess": _int(1, 1, 32, "Worker threads per process."),
        "snapshotIntervalSeconds": _int(10, 1, 3600, "Epoch and snapshot interval."),
        "resources": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                      "description": "Container resources of a dataflow process."},
        "recovery": RECOVERY,
    },
    "x-kubernetes-validations": [
        {"rule": "self.processes <= self.recovery.partitions",
         "message": "dataflow.processes must not exceed dataflow.recovery.partitions"},
    ],
}

WINDOWS: Schema = {
    "type": "object",
    "default": {},
    "properties": {
        "lengthsSeconds": {"type": "array", "default": [60, 300, 900], "minItems": 1,
                           "maxItems": 8, "items": {"type": "integer", "minimum": 10,
                                                    "maximum": 86400}},
        "slideSeconds": _int(10, 10, 3600, "Slide of the sliding windows (multiple of 10)."),
        "latenessSeconds": _int(5, 0, 3600, "Allowed event-time lateness."),
        "topN": _int(3, 1, 100, "Symbols per leaderboard."),
        "maxPriceWindowSeconds": _int(300, 10, 86400, "Tumbling max-price window."),
        "historyTtlSeconds": _int(3600, 60, 604800, "TTL of the history:* keys."),
    },
    "x-kubernetes-validations": [
        {"rule": "self.slideSeconds % 10 == 0",
         "message": "windows.slideSeconds must be a multiple of 10 (the pane)"},
        {"rule": "self.lengthsSeconds.all(l, l % self.slideSeconds == 0)",
         "message": "every windows.lengthsSeconds must be a multiple of windows.slideSeconds"},
        {"rule": "self.maxPriceWindowSeconds % 10 == 0",
         "message": "windows.maxPriceWindowSeconds must be a multiple of 10"},
    ],
}

BROKER: Schema = {
    "type": "object",
    "default": {},
    "properties": {
        "bootstrapServers": {"type": "string", "default": "redpanda:9092", "maxLength": 1024},
        "topic": {"type": "string", "default": "ticks", "maxLength": 249,
                  "x-kubernetes-validations": _immutable("broker.topic")},
        "partitions": _int(6, 1, 1024, "Partitions of the ticks topic (created by the "
                           "operator); lowering is refused, raising needs "
                           "allowPartitionIncrease."),
        "allowPartitionIncrease": {"type": "boolean", "default": False,
                                   "description": "Confirm raising partitions (moves symbols "
                                   "between partitions, so between engines' state)."},
        "dlqTopic": {"type": "string", "default": "ticks.dlq", "maxLength": 249},
        "dlqPartitions": _int(1, 1, 1024, "Partitions of a created DLQ topic."),
        "replicationFactor": _int(1, 1, 16, "Replication factor of created topics."),
        "configSecret": _ref("Secret key holding extra librdkafka settings as JSON "
                             "(KAFKA_EXTRA_CONFIG), e.g. SASL.", "config.json"),
    },
}

REDIS: Schema = {
    "type": "object",
    "default": {},
    "properties": {
        "url": {"type": "string", "default": "redis://redis:6379/0", "maxLength": 1024,
                "description": "redis://host:port/db without the password; a bare host is a "
                "Service in the resource's namespace.",
                "x-kubernetes-validations": [{"rule": "self.startsWith('redis://')",
                                              "message": "redis.url must start with redis://"}]},
        "username": {"type": "string", "maxLength": 128, "pattern": "^[A-Za-z0-9_.-]+$",
                     "description": "Redis ACL user of the dataflow (and of the operator's "
                     "freshness reads); default: the default user."},
        "passwordSecret": _ref("Secret key with the (URL-safe) Redis password.", "password"),
    },
}

FEED: Schema = {
    "type": "object",
    "default": {},
    "properties": {
        "provider": {"type": "string", "default": "replay", "enum": list(PROVIDERS)},
        "replicas": _int(1, 1, 64, "Ingestion pods sharding the symbols (ingest providers)."),
        "replay": {"type": "object", "default": {}, "properties": {
            "file": {"type": "string", "default": SSE_FILE, "maxLength": 1024},
            "speed": {"type": "number", "default": 1.0, "minimum": 0},
            "loop": {"type": "boolean", "default": True},
            "from": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
            "limit": {"type": "integer", "minimum": 1},
        }},
        "simulate": {"type": "object", "default": {}, "properties": {
            "rate": {"type": "number", "default": 1000.0, "minimum": 0.001},
            "symbols": {"type": "integer", "default": 50, "minimum": 1, "maximum": 100000},
        }},
        "finnhub": {"type": "object", "properties": {
            "tokenSecret": _ref("Secret key with the Finnhub API token.", "token"),
        }},
        "symbols": {"type": "array", "maxItems": 10000,
                    "items": {"type": "string", "maxLength": 32}},
        "symbolsConfigMap": _ref("ConfigMap key with one symbol per line.", "symbols.txt"),
    },
    "x-kubernetes-validations": [
        {"rule": "!self.provider.startsWith('finnhub') "
                 "|| (has(self.finnhub) && has(self.finnhub.tokenSecret))",
         "message": "finnhub providers need feed.finnhub.tokenSecret"},
        {"rule": "!(has(self.symbols) && has(self.symbolsConfigMap))",
         "message": "give feed.symbols or feed.symbolsConfigMap, not both"},
        {"rule": "self.provider != 'replay' || self.replicas == 1",
         "message": "the replay provider runs one producer (replicas 1); use ingest-replay "
         "to shard"},
    ],
}

SPEC: Schema = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "minLength": 1, "maxLength": 1024,
                  "description": "The stockstream image (every component)."},
        "imagePullPolicy": {"type": "string", "default": "IfNotPresent",
                            "enum": ["Always", "IfNotPresent", "Never"]},
        "suspend": {"type": "boolean", "default": False,
                    "description": "Stop every process and keep the state."},
        "dataflow": DATAFLOW,
        "windows": WINDOWS,
        "broker": BROKER,
        "redis": REDIS,
        "feed": FEED,
        "monitoring": {"type": "object", "default": {}, "properties": {
            "staleAfterSeconds": _int(120, 10, 86400, "Degraded when the 1m leaderboard has "
                                      "not advanced for this long while Running."),
        }},
    },
    "x-kubernetes-validations": [
        {"rule": "self.dataflow.processes * self.dataflow.workersPerProcess "
                 "<= self.broker.partitions",
         "message": "dataflow.processes x dataflow.workersPerProcess must not exceed "
         "broker.partitions (idle workers otherwise)"},
    ],
}

_CONDITION: Schema = {"type": "object", "properties": {
    "type": {"type": "string"}, "status": {"type": "string"}, "reason": {"type": "string"},
    "message": {"type": "string"}, "lastTransitionTime": {"type": "string"},
    "observedGeneration": {"type": "integer"}}}

STATUS: Schema = {
    "type": "object",
    "properties": {
        "observedGeneration": {"type": "integer"},
        "lifecycle": {"type": "string"},
        "message": {"type": "string"},
        "replicas": {"type": "integer", "description": "Dataflow pods that exist."},
        "readyProcesses": {"type": "integer"},
        "desiredProcesses": {"type": "integer"},
        "processes": {"type": "string", "description": "ready/desired"},
        "selector": {"type": "string"},
        "clusterHash": {"type": "string", "description": "Hash of the running cluster spec."},
        "conditions": {"type": "array", "items": _CONDITION},
        "topic": {"type": "object", "properties": {
            "name": {"type": "string"}, "partitions": {"type": "integer"}}},
        "leaderboards": {"type": "object", "properties": {
            "latest1mWindowEnd": {"type": "string"},
            "advancedAt": {"type": "string"},
            "windows": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "end": {"type": "string"},
                "lagSeconds": {"type": "integer"}}}},
        }},
    },
}


def filled(schema: Schema) -> Schema:
    """`schema` with every object's `default: {}` replaced by its properties' defaults
    (recursively): the API server checks CEL rules against a default as written, before
    nested defaults apply, so an empty default would fail the rules."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {k: filled(v) for k, v in out["properties"].items()}
        if out.get("default") == {}:
            out["default"] = {k: v["default"] for k, v in out["properties"].items()
                              if "default" in v}
    return out


def crd() -> Schema:
    """The CustomResourceDefinition as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}",
                     "labels": {"app.kubernetes.io/part-of": "stockstream"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": KIND, "plural": PLURAL, "singular": "stockstream",
                      "shortNames": ["sst"], "categories": ["stockstream"]},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "required": ["spec"],
                    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                   "metadata": {"type": "object"}, "spec": filled(SPEC),
                                   "status": STATUS},
                }},
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.dataflow.processes",
                              "statusReplicasPath": ".status.replicas",
                              "labelSelectorPath": ".status.selector"},
                },
                "additionalPrinterColumns": [
                    {"name": "Processes", "type": "string", "jsonPath": ".status.processes",
                     "description": "ready/desired dataflow processes"},
                    {"name": "Lifecycle", "type": "string", "jsonPath": ".status.lifecycle"},
                    {"name": "Window-1m-End", "type": "string",
                     "jsonPath": ".status.leaderboards.latest1mWindowEnd"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }],
        },
    }


class _NoAliases(yaml.SafeDumper):
    """Writes repeated values in full (no YAML anchors/aliases)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def render() -> str:
    """The CRD as YAML with a header."""
    header = "# Generated by `python -m services.operator.crd` from services/operator/crd.py.\n"
    return header + yaml.dump(crd(), Dumper=_NoAliases, sort_keys=False, width=100)


def main() -> int:
    check_arguments("stockstream crd", __doc__)
    CRD_PATH.parent.mkdir(parents=True, exist_ok=True)
    CRD_PATH.write_text(render())
    print(CRD_PATH, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
