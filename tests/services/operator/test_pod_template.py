"""spec.podTemplate, spec.dataflow.podTemplate and the typed spec.dataflow.resources: what is
accepted and refused (the messages are the CRD's CEL messages; test_cel_rules.py checks that
the API server says the same), how the templates merge into the generated pods, and what
restarts the dataflow."""

from __future__ import annotations

from typing import Any

import pytest

from services.operator import feed, objects
from services.operator.kube_syntax import is_qualified_name, quantity_value
from services.operator.model import InvalidSpecError, parse_spec
from services.operator.pod_template import merged_into, overlay
from services.operator.pod_template_spec import (
    RESERVED_ANNOTATIONS,
    RESERVED_LABELS,
    RESERVED_PREFIX,
    PodMetadata,
    PodTemplate,
)

BASE: dict[str, Any] = {"image": "stockstream:1", "redis": {"passwordSecret": {"name": "ra"}}}


def pt(**spec: Any) -> dict[str, Any]:
    return {"spec": spec}


def labels(**values: str) -> dict[str, Any]:
    return {"metadata": {"labels": values}}


FULL: dict[str, Any] = {
    "metadata": {
        "labels": {"team": "markets", "example.com/tier": "gold", "empty": ""},
        "annotations": {"example.com/owner": "desk 7, floor 2"},
    },
    "spec": {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {
                                "matchLabels": {"app.kubernetes.io/name": "dataflow"}
                            },
                        },
                    }
                ]
            }
        },
        "tolerations": [
            {
                "key": "dedicated",
                "operator": "Equal",
                "value": "stockstream",
                "effect": "NoSchedule",
            },
            {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
        ],
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule",
                "minDomains": 2,
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "dataflow"}},
            }
        ],
        "priorityClassName": "stockstream-high",
        "imagePullSecrets": [{"name": "regcred"}],
    },
}

ACCEPTED = [
    ("everything", {"podTemplate": FULL}),
    ("dataflow's own", {"dataflow": {"podTemplate": FULL}}),
    (
        "app.kubernetes.io/version is not the operator's",
        {"podTemplate": labels(**{"app.kubernetes.io/version": "1.2"})},
    ),
    ("a 253-character prefix", {"podTemplate": labels(**{"a" * 253 + "/b": "v"})}),
    ("toleration of every taint", {"podTemplate": pt(tolerations=[{"operator": "Exists"}])}),
    (
        "resources as quantities",
        {
            "dataflow": {
                "resources": {
                    "requests": {"cpu": "100m", "memory": 268435456, "ephemeral-storage": "1Gi"},
                    "limits": {"cpu": 2, "memory": "1.5Gi", "ephemeral-storage": "2G"},
                }
            }
        },
    ),
    (
        "request equal to limit",
        {
            "dataflow": {
                "resources": {
                    "requests": {"cpu": "1000m", "memory": "1Gi"},
                    "limits": {"cpu": "1", "memory": "1Gi"},
                }
            }
        },
    ),
    ("requests only", {"dataflow": {"resources": {"requests": {"cpu": "4"}}}}),
    (
        "exponent and decimal suffix",
        {"dataflow": {"resources": {"requests": {"memory": "1e9"}, "limits": {"memory": "1G"}}}},
    ),
]


@pytest.mark.parametrize("patch", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted(patch: dict[str, Any]) -> None:
    parse_spec({**BASE, **patch})


QUALIFIED_DOC = (
    "an optional prefix (a DNS subdomain of at most 253 characters) and '/', then "
    "a name of at most 63 characters: alphanumerics, '-', '_' or '.', starting "
    "and ending with an alphanumeric (e.g. team, example.com/tier)"
)
QUALIFIED = f"must be qualified names: {QUALIFIED_DOC}"
LABEL_VALUES = (
    "must be label values: at most 63 characters: empty, or alphanumerics, '-', "
    "'_' or '.' starting and ending with an alphanumeric"
)
DNS = (
    "must be a DNS subdomain: at most 253 lowercase alphanumerics, '-' or '.', starting and "
    "ending with an alphanumeric"
)
QUANTITY = "must be a non-negative Kubernetes quantity (e.g. 500m, 2, 1.5, 256Mi, 1Gi)"
OWN_LABELS = (
    "podTemplate.metadata.labels must not set the operator's own keys "
    "(app.kubernetes.io/name, app.kubernetes.io/instance, app.kubernetes.io/part-of, "
    "app.kubernetes.io/managed-by, or any stockstream.io/ key)"
)
OWN_ANNOTATIONS = (
    "podTemplate.metadata.annotations must not set the operator's own keys "
    "(prometheus.io/scrape, prometheus.io/port, prometheus.io/path, or any "
    "stockstream.io/ key)"
)

# (id, spec patch, the message: the CEL rule's, which the API server reports the same)
REFUSED = [
    ("selector label", {"podTemplate": labels(**{"app.kubernetes.io/name": "x"})}, OWN_LABELS),
    (
        "instance label in dataflow's",
        {"dataflow": {"podTemplate": labels(**{"app.kubernetes.io/instance": "other"})}},
        OWN_LABELS,
    ),
    (
        "managed-by label",
        {"podTemplate": labels(**{"app.kubernetes.io/managed-by": "me"})},
        OWN_LABELS,
    ),
    ("stockstream.io label", {"podTemplate": labels(**{"stockstream.io/x": "y"})}, OWN_LABELS),
    (
        "scrape annotation",
        {"podTemplate": {"metadata": {"annotations": {"prometheus.io/scrape": "false"}}}},
        OWN_ANNOTATIONS,
    ),
    (
        "cluster-hash annotation",
        {
            "dataflow": {
                "podTemplate": {"metadata": {"annotations": {"stockstream.io/cluster-hash": "x"}}}
            }
        },
        OWN_ANNOTATIONS,
    ),
    (
        "label key with a space",
        {"podTemplate": labels(**{"cost center": "x"})},
        f"podTemplate.metadata.labels keys {QUALIFIED}",
    ),
    (
        "label key prefix in capitals",
        {"podTemplate": labels(**{"Example.com/x": "y"})},
        f"podTemplate.metadata.labels keys {QUALIFIED}",
    ),
    (
        "label key prefix of 254",
        {"podTemplate": labels(**{"a" * 254 + "/b": "v"})},
        f"podTemplate.metadata.labels keys {QUALIFIED}",
    ),
    (
        "label name of 64",
        {"podTemplate": labels(**{"a" * 64: "v"})},
        f"podTemplate.metadata.labels keys {QUALIFIED}",
    ),
    (
        "label value with a space",
        {"podTemplate": labels(team="fx desk")},
        f"podTemplate.metadata.labels values {LABEL_VALUES}",
    ),
    (
        "label value ending in -",
        {"podTemplate": labels(team="fx-")},
        f"podTemplate.metadata.labels values {LABEL_VALUES}",
    ),
    (
        "annotation key",
        {"podTemplate": {"metadata": {"annotations": {"/x": "y"}}}},
        f"podTemplate.metadata.annotations keys {QUALIFIED}",
    ),
    (
        "nodeSelector value",
        {"podTemplate": pt(nodeSelector={"disk": "fast ssd"})},
        f"podTemplate.spec.nodeSelector values {LABEL_VALUES}",
    ),
    (
        "nodeSelector key",
        {"podTemplate": pt(nodeSelector={"-disk": "ssd"})},
        f"podTemplate.spec.nodeSelector keys {QUALIFIED}",
    ),
    (
        "toleration without key, Equal",
        {"podTemplate": pt(tolerations=[{"value": "x"}])},
        "a toleration without a key must have operator Exists (it then tolerates every taint)",
    ),
    (
        "toleration Exists with a value",
        {"podTemplate": pt(tolerations=[{"key": "k", "operator": "Exists", "value": "x"}])},
        "a toleration with operator Exists must not have a value",
    ),
    (
        "tolerationSeconds without NoExecute",
        {
            "podTemplate": pt(
                tolerations=[{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]
            )
        },
        "tolerationSeconds needs effect NoExecute",
    ),
    (
        "toleration key",
        {"podTemplate": pt(tolerations=[{"key": "a b"}])},
        f"a toleration key must be empty or a qualified name: {QUALIFIED_DOC}",
    ),
    (
        "toleration value",
        {"podTemplate": pt(tolerations=[{"key": "k", "value": "a b"}])},
        "a toleration value must be a label value: at most 63 characters: empty, or "
        "alphanumerics, '-', '_' or '.' starting and ending with an alphanumeric",
    ),
    (
        "priorityClassName",
        {"podTemplate": pt(priorityClassName="High")},
        f"podTemplate.spec.priorityClassName {DNS}",
    ),
    (
        "imagePullSecrets name",
        {"podTemplate": pt(imagePullSecrets=[{"name": "reg_cred"}])},
        f"an imagePullSecrets name {DNS}",
    ),
    (
        "minDomains with ScheduleAnyway",
        {
            "podTemplate": pt(
                topologySpreadConstraints=[
                    {
                        "maxSkew": 1,
                        "topologyKey": "zone",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "minDomains": 2,
                    }
                ]
            )
        },
        "a topology spread constraint's minDomains needs whenUnsatisfiable DoNotSchedule",
    ),
    (
        "topologyKey",
        {
            "podTemplate": pt(
                topologySpreadConstraints=[
                    {"maxSkew": 1, "topologyKey": "zone/", "whenUnsatisfiable": "DoNotSchedule"}
                ]
            )
        },
        f"a topologySpreadConstraints topologyKey must be a qualified name: {QUALIFIED_DOC}",
    ),
    (
        "cpu request not a quantity",
        {"dataflow": {"resources": {"requests": {"cpu": "1 core"}}}},
        f"dataflow.resources.requests.cpu {QUANTITY}",
    ),
    (
        "1Ki is more than 1k",
        {"dataflow": {"resources": {"limits": {"memory": "1k"}, "requests": {"memory": "1Ki"}}}},
        "dataflow.resources.requests.memory must not exceed dataflow.resources.limits.memory",
    ),
    (
        "kilo as K",
        {"dataflow": {"resources": {"limits": {"memory": "512K"}}}},
        f"dataflow.resources.limits.memory {QUANTITY}",
    ),
    (
        "negative limit",
        {"dataflow": {"resources": {"limits": {"cpu": "-1"}}}},
        f"dataflow.resources.limits.cpu {QUANTITY}",
    ),
    (
        "negative integer",
        {"dataflow": {"resources": {"requests": {"ephemeral-storage": -1}}}},
        f"dataflow.resources.requests.ephemeral-storage {QUANTITY}",
    ),
    (
        "cpu request over limit",
        {"dataflow": {"resources": {"requests": {"cpu": "1500m"}, "limits": {"cpu": 1}}}},
        "dataflow.resources.requests.cpu must not exceed dataflow.resources.limits.cpu",
    ),
    (
        "memory request over limit",
        {"dataflow": {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "1G"}}}},
        "dataflow.resources.requests.memory must not exceed dataflow.resources.limits.memory",
    ),
    (
        "ephemeral-storage request over limit",
        {
            "dataflow": {
                "resources": {
                    "requests": {"ephemeral-storage": "2Gi"},
                    "limits": {"ephemeral-storage": "1Gi"},
                }
            }
        },
        "dataflow.resources.requests.ephemeral-storage must not exceed "
        "dataflow.resources.limits.ephemeral-storage",
    ),
]


@pytest.mark.parametrize(
    ("patch", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused_with_the_cel_message(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError) as err:
        parse_spec({**BASE, **patch})
    assert err.value.problems == [message]


def test_a_float_quantity_is_refused_with_a_hint() -> None:
    """YAML `cpu: 0.5` is a float, which an int-or-string field does not take (the API
    server says `must be of type integer,string`)."""
    with pytest.raises(InvalidSpecError) as err:
        parse_spec({**BASE, "dataflow": {"resources": {"limits": {"cpu": 0.5}}}})
    assert err.value.problems == [
        "spec.dataflow.resources.limits.cpu: Value error, a quantity "
        "is a string or an integer (quote a decimal: '0.5' or "
        "'500m')"
    ]


QUANTITIES = [
    ("1", 1),
    ("250m", 0.25),
    ("1.5Gi", 1.5 * 2**30),
    ("2Ki", 2048),
    ("1e3", 1000),
    ("1E-3", 0.001),
    ("+.5", 0.5),
    ("1.", 1),
    ("3n", 3e-9),
    ("7u", 7e-6),
    ("2k", 2000),
    ("5M", 5e6),
    ("1Ei", 2**60),
    (768, 768),
]


@pytest.mark.parametrize(("text", "value"), QUANTITIES, ids=[str(q[0]) for q in QUANTITIES])
def test_quantity_values(text: str | int, value: float) -> None:
    assert float(quantity_value(text)) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "1K", "1ki", "1 Gi", "Gi", "1e1.5", "0x10", "1Mi1", "e3"])
def test_not_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        quantity_value(text)


def test_reserved_keys_are_the_ones_the_operator_sets() -> None:
    ours = objects.pod_template("p", parse_spec(BASE), 2)["metadata"]
    assert set(ours["labels"]) == set(RESERVED_LABELS)
    assert set(ours["annotations"]) == set(RESERVED_ANNOTATIONS)
    assert objects.HASH_ANNOTATION.startswith(RESERVED_PREFIX)
    assert all(is_qualified_name(k) for k in (*RESERVED_LABELS, *RESERVED_ANNOTATIONS))


def _dataflow_pod(spec: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = objects.statefulset("p", parse_spec(spec), 2)["spec"]["template"]
    return template


def test_the_statefulset_carries_the_pod_template() -> None:
    pod = _dataflow_pod({**BASE, "podTemplate": FULL})
    assert pod["metadata"]["labels"] == {
        **FULL["metadata"]["labels"],
        **objects.labels("p", "dataflow"),
    }
    annotations = pod["metadata"]["annotations"]
    assert annotations["example.com/owner"] == "desk 7, floor 2"
    assert annotations["prometheus.io/scrape"] == "true"
    assert objects.HASH_ANNOTATION in annotations
    for field in (
        "nodeSelector",
        "affinity",
        "tolerations",
        "topologySpreadConstraints",
        "priorityClassName",
        "imagePullSecrets",
    ):
        assert pod["spec"][field] == FULL["spec"][field], field
    # the hardening is untouched
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod["spec"]


def test_no_pod_template_adds_nothing() -> None:
    pod = _dataflow_pod(BASE)
    assert set(pod["metadata"]["labels"]) == set(RESERVED_LABELS)
    assert set(pod["spec"]) == {
        "automountServiceAccountToken",
        "enableServiceLinks",
        "terminationGracePeriodSeconds",
        "securityContext",
        "containers",
        "volumes",
    }
    assert (
        _dataflow_pod(
            {
                **BASE,
                "podTemplate": {"metadata": {}, "spec": {"tolerations": [], "nodeSelector": {}}},
            }
        )
        == pod
    )


def test_the_dataflow_template_goes_over_the_common_one() -> None:
    """Maps merge by key (the dataflow's win); other fields given are replaced; an empty list
    clears."""
    common = {
        "metadata": {"labels": {"team": "fx", "tier": "silver"}, "annotations": {"a": "1"}},
        "spec": {
            "nodeSelector": {"pool": "shared", "os": "linux"},
            "tolerations": [{"key": "shared", "operator": "Exists"}],
            "priorityClassName": "normal",
            "imagePullSecrets": [{"name": "reg"}],
        },
    }
    specific = {
        "metadata": {"labels": {"tier": "gold", "role": "engine"}},
        "spec": {
            "nodeSelector": {"pool": "dedicated"},
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
            "imagePullSecrets": [],
        },
    }
    pod = _dataflow_pod({**BASE, "podTemplate": common, "dataflow": {"podTemplate": specific}})
    assert {k: v for k, v in pod["metadata"]["labels"].items() if k not in RESERVED_LABELS} == {
        "team": "fx",
        "tier": "gold",
        "role": "engine",
    }
    assert pod["metadata"]["annotations"]["a"] == "1"
    assert pod["spec"]["nodeSelector"] == {"pool": "dedicated", "os": "linux"}
    assert pod["spec"]["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["spec"]["priorityClassName"] == "normal"
    assert "imagePullSecrets" not in pod["spec"]


def test_merged_maps_may_exceed_what_one_template_may_hold() -> None:
    """64 labels in each template: the dataflow's pods get all 128 (Kubernetes bounds only
    the annotations' total size), and the merge does not fail the pass."""
    common = {f"common-{i}": "x" for i in range(64)}
    specific = {f"dataflow-{i}": "y" for i in range(64)}
    pod = _dataflow_pod(
        {
            **BASE,
            "podTemplate": {"metadata": {"labels": common}},
            "dataflow": {"podTemplate": {"metadata": {"labels": specific}}},
        }
    )
    assert len(pod["metadata"]["labels"]) == 128 + len(RESERVED_LABELS)


def test_feed_pods_take_only_the_common_template() -> None:
    spec = {
        **BASE,
        "podTemplate": {"spec": {"priorityClassName": "normal"}},
        "dataflow": {"podTemplate": {"spec": {"priorityClassName": "high"}}},
    }
    for feed_spec in (
        {},
        {"provider": "ingest-replay", "replicas": 2},
        {"replay": {"loop": False}},
    ):
        objs = feed.feed_objects("p", parse_spec({**spec, "feed": feed_spec}))
        (owner,) = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet", "Job")]
        pod = owner["spec"]["template"]["spec"]
        assert pod["priorityClassName"] == "normal", owner["kind"]
    assert _dataflow_pod(spec)["spec"]["priorityClassName"] == "high"
    ingest = feed.feed_objects("p", parse_spec({**spec, "feed": {"provider": "ingest-replay"}}))
    (sts,) = [o for o in ingest if o["kind"] == "StatefulSet"]
    assert sts["spec"]["template"]["spec"]["serviceAccountName"] == "p-ingest"


def test_the_operators_labels_and_annotations_win() -> None:
    """The rules refuse these keys; should one get through (a template built without
    validation), the generated pods keep the operator's values."""
    sneaky = PodTemplate.model_construct(
        metadata=PodMetadata.model_construct(
            labels={"app.kubernetes.io/name": "other", "team": "fx"},
            annotations={"prometheus.io/scrape": "false"},
        )
    )
    ours = {
        "metadata": {
            "labels": {"app.kubernetes.io/name": "dataflow"},
            "annotations": {"prometheus.io/scrape": "true"},
        },
        "spec": {},
    }
    out = merged_into(ours, sneaky)
    assert out["metadata"]["labels"] == {"app.kubernetes.io/name": "dataflow", "team": "fx"}
    assert out["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}
    assert ours["metadata"]["labels"] == {"app.kubernetes.io/name": "dataflow"}  # not mutated


def test_overlay_of_nothing_is_empty() -> None:
    assert merged_into({"metadata": {}, "spec": {}}, overlay(None, None)) == {
        "metadata": {},
        "spec": {},
    }


RESTARTS = [
    ("a label", {"podTemplate": labels(team="fx")}),
    ("an annotation", {"podTemplate": {"metadata": {"annotations": {"a": "b"}}}}),
    ("a toleration", {"podTemplate": pt(tolerations=[{"operator": "Exists"}])}),
    ("the dataflow's nodeSelector", {"dataflow": {"podTemplate": pt(nodeSelector={"a": "b"})}}),
    ("a cpu limit", {"dataflow": {"resources": {"limits": {"cpu": "2"}}}}),
]


@pytest.mark.parametrize("patch", [c[1] for c in RESTARTS], ids=[c[0] for c in RESTARTS])
def test_a_pod_template_change_is_a_coordinated_restart(patch: dict[str, Any]) -> None:
    """Any change of the generated pod template, labels and annotations included, changes
    the cluster hash (services/operator/README.md says why)."""
    assert objects.cluster_hash("p", parse_spec(BASE)) != objects.cluster_hash(
        "p", parse_spec({**BASE, **patch})
    )


# Cluster hashes of StockStreams without podTemplate, computed by the operator before
# podTemplate and typed resources existed (commit ecfe465): equal, so upgrading the operator
# restarts none of them. A deliberate change of the generated template updates these.
BEFORE_PODTEMPLATE = [
    ("defaults", BASE, "61678a57f7"),
    (
        "resources as strings",
        {
            **BASE,
            "dataflow": {
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"cpu": "1", "memory": "768Mi"},
                }
            },
        },
        "f98b043e7e",
    ),
    (
        "integer quantities",
        {
            **BASE,
            "dataflow": {
                "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"cpu": 2}}
            },
        },
        "24a082fcbe",
    ),
    ("empty resources", {**BASE, "dataflow": {"resources": {}}}, "61678a57f7"),
]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [c[1:] for c in BEFORE_PODTEMPLATE],
    ids=[c[0] for c in BEFORE_PODTEMPLATE],
)
def test_cluster_hash_without_pod_template_is_unchanged(
    spec: dict[str, Any], expected: str
) -> None:
    assert objects.cluster_hash("p", parse_spec(spec)) == expected


def test_resources_are_passed_as_given() -> None:
    spec = parse_spec(
        {**BASE, "dataflow": {"resources": {"requests": {"cpu": 1}, "limits": {"memory": "1Gi"}}}}
    )
    container = objects.pod_template("p", spec, 2)["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": 1}, "limits": {"memory": "1Gi"}}
    default = objects.pod_template("p", parse_spec(BASE), 2)["spec"]["containers"][0]
    assert default["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "1", "memory": "768Mi"},
    }
