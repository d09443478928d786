"""`spec.podTemplate` and `spec.dataflow.podTemplate`: what users may add to generated pods.

A whitelist, shaped like a Kubernetes PodTemplateSpec (`metadata`, `spec`) so that fields can
be copied from a pod: labels and annotations, and the scheduling fields a cluster's policy
asks for (nodeSelector, affinity, tolerations, topologySpreadConstraints, priorityClassName)
plus imagePullSecrets for a private registry. Not containers, volumes, security contexts,
host namespaces or the service account: the operator's hardening (non-root, read-only root
filesystem, no token mounted) and its contract with the processes stay as they are. (A
service account would only matter for tokens the pods do not mount, and for pull secrets,
which imagePullSecrets gives; the ingestion pods need their own for their Role.)

Simple structures are typed and checked like the API server checks a pod (label syntax,
toleration operators and effects, quantities), so a mistake is refused at `kubectl apply`
with a message naming the field, not when the operator applies a StatefulSet. `affinity`'s
three parts and a spread constraint's `labelSelector` are Kubernetes' own nested types, kept
as given (x-kubernetes-preserve-unknown-fields); the API server checks them when the operator
applies the pods' owner, and the operator reports a refusal as `InvalidSpec`.

Keys the operator sets itself are refused in labels and annotations: its selector and
recommended labels (app.kubernetes.io/name, instance, part-of, managed-by), the Prometheus
scrape annotations and anything under stockstream.io/. Overriding a selector label would
orphan the pods from their StatefulSet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field
from pydantic.config import JsonDict

from services.operator.kube_syntax import (
    DNS_SUBDOMAIN_DOC,
    LABEL_VALUE_DOC,
    QUALIFIED_NAME_DOC,
    cel_dns_subdomain,
    cel_label_value,
    cel_qualified_name,
    is_dns_subdomain,
    is_label_value,
    is_qualified_name,
)
from services.operator.schema import Rule, SpecModel

PRESERVE: JsonDict = {"x-kubernetes-preserve-unknown-fields": True}

RESERVED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)
RESERVED_ANNOTATIONS = ("prometheus.io/scrape", "prometheus.io/port", "prometheus.io/path")
RESERVED_PREFIX = "stockstream.io/"


def keys_rule(what: str) -> Rule:
    """Every key of the map at `what` is a qualified name."""
    return Rule(
        f"self.all(k, {cel_qualified_name('k')})",
        f"{what} keys must be qualified names: {QUALIFIED_NAME_DOC}",
        lambda m: all(is_qualified_name(k) for k in m),
    )


def values_rule(what: str) -> Rule:
    """Every value of the map at `what` is a label value."""
    return Rule(
        f"self.all(k, {cel_label_value('self[k]')})",
        f"{what} values must be label values: {LABEL_VALUE_DOC}",
        lambda m: all(is_label_value(v) for v in m.values()),
    )


def reserved_rule(what: str, reserved: tuple[str, ...]) -> Rule:
    """No key of the map at `what` is one the operator sets."""
    listed = ", ".join(f"'{k}'" for k in reserved)
    return Rule(
        f"self.all(k, !(k in [{listed}]) && !k.startsWith('{RESERVED_PREFIX}'))",
        f"{what} must not set the operator's own keys ({', '.join(reserved)}, or "
        f"any {RESERVED_PREFIX} key)",
        lambda m: not any(k in reserved or k.startswith(RESERVED_PREFIX) for k in m),
    )


def dns_subdomain_rule(what: str) -> Rule:
    return Rule(cel_dns_subdomain("self"), f"{what} must be {DNS_SUBDOMAIN_DOC}", is_dns_subdomain)


def label_value_rule(what: str) -> Rule:
    return Rule(
        cel_label_value("self"), f"{what} must be a label value: {LABEL_VALUE_DOC}", is_label_value
    )


def qualified_name_rule(what: str) -> Rule:
    return Rule(
        cel_qualified_name("self"),
        f"{what} must be a qualified name: {QUALIFIED_NAME_DOC}",
        is_qualified_name,
    )


LabelValue = Annotated[str, Field(max_length=63)]
LABELS, ANNOTATIONS = "podTemplate.metadata.labels", "podTemplate.metadata.annotations"
NODE_SELECTOR = "podTemplate.spec.nodeSelector"
Labels = Annotated[
    Mapping[str, LabelValue],
    Field(max_length=64),
    keys_rule(LABELS),
    values_rule(LABELS),
    reserved_rule(LABELS, RESERVED_LABELS),
]
Annotations = Annotated[
    Mapping[str, str],
    Field(max_length=64),
    keys_rule(ANNOTATIONS),
    reserved_rule(ANNOTATIONS, RESERVED_ANNOTATIONS),
]
NodeSelector = Annotated[
    Mapping[str, LabelValue],
    Field(max_length=32),
    keys_rule(NODE_SELECTOR),
    values_rule(NODE_SELECTOR),
]


class PodMetadata(SpecModel):
    labels: Labels | None = Field(
        None,
        description="Labels added to the pods; not the operator's own "
        "(app.kubernetes.io/name, instance, part-of, managed-by) nor stockstream.io/ keys.",
    )
    annotations: Annotations | None = Field(
        None,
        description="Annotations added to the pods; not the operator's own "
        "(prometheus.io/scrape, port, path) nor stockstream.io/ keys.",
    )


class Toleration(SpecModel):
    """A pod toleration (core/v1 Toleration), checked as the API server checks a pod's."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "has(self.key) && self.key != '' || has(self.operator) && self.operator == 'Exists'",
            "a toleration without a key must have operator Exists (it then tolerates every taint)",
            lambda t: bool(t.key) or t.operator == "Exists",
        ),
        Rule(
            "!has(self.operator) || self.operator != 'Exists' || !has(self.value) "
            "|| self.value == ''",
            "a toleration with operator Exists must not have a value",
            lambda t: t.operator != "Exists" or not t.value,
        ),
        Rule(
            "!has(self.tolerationSeconds) || has(self.effect) && self.effect == 'NoExecute'",
            "tolerationSeconds needs effect NoExecute",
            lambda t: t.toleration_seconds is None or t.effect == "NoExecute",
        ),
    )

    key: (
        Annotated[
            str,
            Rule(
                f"self == '' || {cel_qualified_name('self')}",
                f"a toleration key must be empty or a qualified name: {QUALIFIED_NAME_DOC}",
                lambda k: not k or is_qualified_name(k),
            ),
        ]
        | None
    ) = Field(
        None,
        max_length=317,
        description="Taint key matched; empty with operator Exists: every taint.",
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        None, description="Exists (any value) or Equal (the value); unset: Equal."
    )
    value: Annotated[str, label_value_rule("a toleration value")] | None = Field(
        None, max_length=63, description="Taint value matched with operator Equal."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect matched; unset: every effect."
    )
    toleration_seconds: int | None = Field(
        None,
        description="With effect NoExecute: how long the pod stays bound after the "
        "taint appears; unset: forever.",
    )


class LocalObjectReference(SpecModel):
    name: Annotated[str, dns_subdomain_rule("an imagePullSecrets name")] = Field(
        max_length=253,
        description="Name of a Secret (kubernetes.io/dockerconfigjson) in the "
        "resource's namespace.",
    )


class Affinity(SpecModel):
    """core/v1 Affinity; each part is Kubernetes' own type, checked by the API server."""

    node_affinity: Mapping[str, Any] | None = Field(
        None,
        json_schema_extra=PRESERVE,
        description="core/v1 NodeAffinity: which nodes the "
        "pods may (required...) or prefer to (preferred...) run on.",
    )
    pod_affinity: Mapping[str, Any] | None = Field(
        None,
        json_schema_extra=PRESERVE,
        description="core/v1 PodAffinity: run near pods matching a label selector.",
    )
    pod_anti_affinity: Mapping[str, Any] | None = Field(
        None,
        json_schema_extra=PRESERVE,
        description="core/v1 PodAntiAffinity: run away from "
        "pods matching a label selector (e.g. one dataflow process per node).",
    )


class TopologySpreadConstraint(SpecModel):
    """core/v1 TopologySpreadConstraint."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            "!has(self.minDomains) || self.whenUnsatisfiable == 'DoNotSchedule'",
            "a topology spread constraint's minDomains needs whenUnsatisfiable DoNotSchedule",
            lambda c: c.min_domains is None or c.when_unsatisfiable == "DoNotSchedule",
        ),
    )

    max_skew: int = Field(
        ge=1,
        description="The most the number of matching pods may differ between two topology domains.",
    )
    topology_key: Annotated[str, qualified_name_rule("a topologySpreadConstraints topologyKey")] = (
        Field(
            max_length=317,
            description="Node label whose values are the domains (e.g. "
            "topology.kubernetes.io/zone, kubernetes.io/hostname).",
        )
    )
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"] = Field(
        description="DoNotSchedule (a hard rule) or ScheduleAnyway (a preference)."
    )
    label_selector: Mapping[str, Any] | None = Field(
        None,
        json_schema_extra=PRESERVE,
        description="meta/v1 LabelSelector of the pods "
        "counted (e.g. matchLabels app.kubernetes.io/name: dataflow and "
        "app.kubernetes.io/instance: <the StockStream's name>).",
    )
    min_domains: int | None = Field(
        None, ge=1, description="Minimum number of eligible domains (with DoNotSchedule)."
    )
    node_affinity_policy: Literal["Honor", "Ignore"] | None = Field(
        None,
        description="Whether the pod's nodeAffinity/nodeSelector limit the domains "
        "counted; unset: Honor.",
    )
    node_taints_policy: Literal["Honor", "Ignore"] | None = Field(
        None, description="Whether tainted nodes are counted; unset: Ignore."
    )
    match_label_keys: tuple[Annotated[str, Field(max_length=317)], ...] | None = Field(
        None,
        max_length=16,
        description="Pod label keys whose values the incoming pod's "
        "must match, added to labelSelector.",
    )


class PodSpec(SpecModel):
    node_selector: NodeSelector | None = Field(
        None, description="Node labels the pods' node must have."
    )
    affinity: Affinity | None = Field(
        None, description="Node affinity, pod affinity and pod anti-affinity of the pods."
    )
    tolerations: tuple[Toleration, ...] | None = Field(
        None, max_length=32, description="Taints the pods tolerate."
    )
    topology_spread_constraints: tuple[TopologySpreadConstraint, ...] | None = Field(
        None, max_length=8, description="How the pods spread over zones or nodes."
    )
    priority_class_name: (
        Annotated[str, dns_subdomain_rule("podTemplate.spec.priorityClassName")] | None
    ) = Field(
        None,
        max_length=253,
        description="PriorityClass of the pods (it must exist; the "
        "system-* ones are for kube-system only).",
    )
    image_pull_secrets: tuple[LocalObjectReference, ...] | None = Field(
        None, max_length=16, description="Secrets to pull the image with (a private registry)."
    )


class PodTemplate(SpecModel):
    """Labels, annotations and scheduling fields merged into generated pods."""

    metadata: PodMetadata | None = Field(None, description="Labels and annotations of the pods.")
    spec: PodSpec | None = Field(
        None, description="Scheduling fields and pull secrets of the pods."
    )
