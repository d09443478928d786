"""A small evaluator of Kubernetes NetworkPolicy (networking.k8s.io/v1) semantics, for pure
tests of rendered manifests: is a connection from one endpoint to another allowed?

Rules implemented (https://kubernetes.io/docs/concepts/services-networking/network-policies/):
- a pod is isolated for ingress (egress) when a policy of its namespace selects it and lists
  `Ingress` (`Egress`) in `policyTypes` (default: `Ingress`, plus `Egress` when the policy
  has an `egress` section);
- a connection needs the source's egress AND the destination's ingress to allow it: not
  isolated, or some rule of a selecting policy whose peers (absent or empty `from`/`to`: any)
  and ports (absent or empty: any; numbers, names of the destination's container ports,
  `endPort` ranges; protocol default TCP) match;
- a peer is a `podSelector` (pods of the policy's namespace), a `namespaceSelector` (pods of
  matching namespaces), both (matching pods in matching namespaces), or an `ipBlock`, here
  matched against endpoints outside the pod network only (pod IPs are not modelled);
- label selectors: `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace, labels, named container ports) or an address outside the pods."""

    name: str
    namespace: str | None = None  # None: outside the pod network
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    port_names: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # name -> port, proto
    ip: str | None = None  # for endpoints outside the pod network

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def _expression_matches(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    checks = {
        "In": lambda: labels.get(key) in values,
        "NotIn": lambda: key not in labels or labels[key] not in values,
        "Exists": lambda: key in labels,
        "DoesNotExist": lambda: key not in labels,
    }
    if op not in checks:
        raise ValueError(f"unknown selector operator {op!r}")
    return checks[op]()


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector: `{}` (and an absent one) matches everything."""
    if selector is None:
        return True
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and all(
        _expression_matches(e, labels) for e in selector.get("matchExpressions") or []
    )


def policy_types(policy: Manifest) -> set[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return set(spec["policyTypes"])
    return {"Ingress", *(("Egress",) if "egress" in spec else ())}


def selects(policy: Manifest, pod: Endpoint) -> bool:
    return (
        pod.is_pod
        and policy["metadata"].get("namespace") == pod.namespace
        and selector_matches(policy["spec"].get("podSelector", {}), pod.labels)
    )


def peer_matches(peer: Mapping[str, Any], policy_namespace: str | None, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        if other.is_pod or other.ip is None:
            return False
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])
        )
    if not other.is_pod:
        return False
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector"), other.labels)


def port_matches(
    rule_ports: Iterable[Mapping[str, Any]] | None, dst: Endpoint, port: int, protocol: str
) -> bool:
    ports = list(rule_ports or [])
    if not ports:
        return True
    for item in ports:
        if item.get("protocol", "TCP") != protocol:
            continue
        wanted = item.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            if dst.port_names.get(wanted) == (port, protocol):
                return True
            continue
        if wanted <= port <= item.get("endPort", wanted):
            return True
    return False


def _side_allows(
    policies: list[Manifest],
    pod: Endpoint,
    other: Endpoint,
    dst: Endpoint,
    port: int,
    protocol: str,
    direction: str,
) -> bool:
    kind, section, peers_key = (
        ("Ingress", "ingress", "from") if direction == "ingress" else ("Egress", "egress", "to")
    )
    relevant = [p for p in policies if selects(p, pod) and kind in policy_types(p)]
    if not relevant:
        return True  # not isolated in this direction
    for policy in relevant:
        for rule in policy["spec"].get(section) or []:
            peers = rule.get(peers_key) or []
            namespace = policy["metadata"].get("namespace")
            if peers and not any(peer_matches(peer, namespace, other) for peer in peers):
                continue
            if port_matches(rule.get("ports"), dst, port, protocol):
                return True
    return False


def allowed(
    policies: list[Manifest], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """Whether a connection from `src` to `dst` on `port`/`protocol` is allowed."""
    egress_ok = not src.is_pod or _side_allows(policies, src, dst, dst, port, protocol, "egress")
    ingress_ok = not dst.is_pod or _side_allows(policies, dst, src, dst, port, protocol, "ingress")
    return egress_ok and ingress_ok


def pods_of(
    objs: list[Manifest], namespace_labels: Mapping[str, Mapping[str, str]]
) -> list[tuple[Endpoint, list[tuple[int, str]]]]:
    """One pod per workload of rendered manifests, with its declared container ports."""
    out = []
    for obj in objs:
        if obj["kind"] not in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
            continue
        spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
        template = spec["template"]
        namespace = obj["metadata"].get("namespace", "default")
        ports = [
            (p["containerPort"], p.get("protocol", "TCP"))
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
        ]
        names = {
            p["name"]: (p["containerPort"], p.get("protocol", "TCP"))
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
            if "name" in p
        }
        ns_labels = {
            "kubernetes.io/metadata.name": namespace,
            **namespace_labels.get(namespace, {}),
        }
        out.append(
            (
                Endpoint(
                    obj["metadata"]["name"],
                    namespace,
                    template["metadata"].get("labels", {}),
                    ns_labels,
                    names,
                ),
                ports,
            )
        )
    return out
