"""The `StockStream` CustomResourceDefinition, its spec schema generated from the model.

`python -m services.operator.crd` writes it to `deploy/kustomize/operator/install/crd.yaml`
(a test checks that the file is up to date). The spec's schema (names, defaults, bounds,
descriptions, CEL rules) comes from `spec.StockStreamSpec` (the one source of truth of the
API); the status schema, subresources and printer columns are written here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

from services.operator.model import GROUP, KIND, PLURAL, VERSION
from services.operator.schema import Schema, structural
from services.operator.spec import StockStreamSpec
from stockstream.cli import check_arguments

CRD_PATH = Path(__file__).resolve().parents[2] / "deploy/kustomize/operator/install/crd.yaml"


SPEC: Schema = structural(StockStreamSpec)


def _t(type_: str, doc: str, **more: Any) -> Schema:
    return {"type": type_, "description": doc, **more}


_CONDITION = _t(
    "object",
    "A condition (Ready, Progressing, Degraded or RolledBack).",
    properties={
        "type": _t("string", "Ready, Progressing, Degraded or RolledBack."),
        "status": _t("string", "True, False or Unknown."),
        "reason": _t(
            "string", "CamelCase reason: the step (Progressing) or what is wrong (Degraded)."
        ),
        "message": _t("string", "What happened, for a person."),
        "lastTransitionTime": _t("string", "When status last changed (RFC 3339, UTC)."),
        "observedGeneration": _t("integer", "metadata.generation the condition is about."),
    },
)

_WINDOW = _t(
    "object",
    "One leaderboard window.",
    properties={
        "name": _t("string", "The window (e.g. 1m, 5m)."),
        "end": _t("string", "End of its latest leaderboard (RFC 3339)."),
        "lagSeconds": _t(
            "integer", "How far that end was behind the wall clock when first seen, in seconds."
        ),
    },
)

STATUS = _t(
    "object",
    "Observed state, written by the operator.",
    properties={
        "observedGeneration": _t("integer", "metadata.generation of the last reconciled spec."),
        "lifecycle": _t(
            "string",
            "Deploying, Running, Rescaling, Upgrading, Suspended, Failed or "
            "RolledBack (running the last stable spec, see rollback).",
        ),
        "message": _t("string", "The current step, or what is wrong."),
        "replicas": _t("integer", "Dataflow pods that exist (the scale subresource)."),
        "readyProcesses": _t("integer", "Dataflow processes that are ready."),
        "desiredProcesses": _t("integer", "Dataflow processes that should run (0 when suspended)."),
        "processes": _t("string", "ready/desired"),
        "selector": _t("string", "Label selector of the dataflow pods (the scale subresource)."),
        "clusterHash": _t(
            "string", "Hash of the running cluster spec (the dataflow pod template)."
        ),
        "conditions": _t("array", "Ready, Progressing, Degraded and RolledBack.", items=_CONDITION),
        "stable": _t(
            "object",
            "The last stable spec: a fresh 1m window landed under it (or, "
            "when no window was expected, every process became ready). What a rollback "
            "returns to.",
            properties={
                "generation": _t("integer", "metadata.generation of that spec."),
                "spec": _t("string", "The spec, as JSON."),
                "since": _t("string", "When it was found stable (RFC 3339)."),
            },
        ),
        "pending": _t(
            "object",
            "The current spec, applied but not stable yet.",
            properties={
                "generation": _t("integer", "Its metadata.generation."),
                "since": _t(
                    "string",
                    "When the operator first applied it (RFC 3339); "
                    "spec.rollback.readinessTimeoutSeconds count from here.",
                ),
                "expectWindow": _t(
                    "boolean",
                    "Whether stability needs a fresh window (the "
                    "leaderboards were advancing when it was applied).",
                ),
            },
        ),
        "rollback": _t(
            "object",
            "Set while the last stable spec runs instead of the resource's "
            "spec; cleared by the next edit.",
            properties={
                "generation": _t("integer", "The generation rolled back."),
                "toGeneration": _t("integer", "The generation of the stable spec running instead."),
                "at": _t("string", "When (RFC 3339)."),
                "reason": _t("string", "Why, for a person."),
            },
        ),
        "topic": _t(
            "object",
            "The ticks topic as found on the broker.",
            properties={
                "name": _t("string", "Topic name."),
                "partitions": _t("integer", "Its partitions."),
            },
        ),
        "leaderboards": _t(
            "object",
            "Freshness of the leaderboards in Redis.",
            properties={
                "latest1mWindowEnd": _t("string", "End of the latest 1m leaderboard (RFC 3339)."),
                "advancedAt": _t("string", "When the 1m leaderboard last advanced (RFC 3339)."),
                "windows": _t("array", "Each window's latest end and lag.", items=_WINDOW),
            },
        ),
    },
)


def crd() -> Schema:
    """The CustomResourceDefinition as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "stockstream"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "plural": PLURAL,
                "singular": "stockstream",
                "shortNames": ["sst"],
                "categories": ["stockstream"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": _t("string", "stockstream.io/v1alpha1"),
                                "kind": _t("string", "StockStream"),
                                # only name/generateName rules allowed: no description
                                "metadata": {"type": "object"},
                                "spec": SPEC,
                                "status": STATUS,
                            },
                        }
                    },
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.dataflow.processes",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": [
                        {
                            "name": "Processes",
                            "type": "string",
                            "jsonPath": ".status.processes",
                            "description": "ready/desired dataflow processes",
                        },
                        {"name": "Lifecycle", "type": "string", "jsonPath": ".status.lifecycle"},
                        {
                            "name": "Window-1m-End",
                            "type": "string",
                            "jsonPath": ".status.leaderboards.latest1mWindowEnd",
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


class _NoAliases(yaml.SafeDumper):
    """Writes repeated values in full (no YAML anchors/aliases)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def render() -> str:
    """The CRD as YAML with a header."""
    header = (
        "# Generated by `python -m services.operator.crd` from services/operator/crd.py\n"
        "# and the spec model services/operator/spec.py.\n"
    )
    return header + yaml.dump(crd(), Dumper=_NoAliases, sort_keys=False, width=100)


def main() -> int:
    check_arguments("stockstream crd", __doc__)
    CRD_PATH.parent.mkdir(parents=True, exist_ok=True)
    CRD_PATH.write_text(render())
    print(CRD_PATH, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
