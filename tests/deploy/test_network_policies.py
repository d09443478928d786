"""The NetworkPolicies of deploy/kustomize/base, evaluated on the rendered manifests: every
required flow (the table below) is allowed, and every other flow between the rendered pods,
from a stranger pod, or to the outside is denied. Pure: tests/networkpolicy_support.py
implements the NetworkPolicy semantics; no cluster."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.deploy.conftest import OVERLAYS, Manifest, find, pod_template, workloads
from tests.networkpolicy_support import Endpoint, allowed, pods_of

# Targets with the base's policies: the app namespace alone (dev, prod) and with each
# optional component next to it (the component tests render them in one namespace).
TARGETS = [
    *(f"overlays/{o}" for o in OVERLAYS if o != "dev-logging"),
    "components/ingestion+monitoring",
    "components/logging",
]
# The broker is Redpanda, or Apache Kafka in overlays/local-cluster: one row for both.
ALIASES = {"redpanda": "broker", "kafka": "broker"}
APP_LABELS = {"app.kubernetes.io/part-of": "stockstream"}

# Endpoints that are not rendered workloads.
KUBE_DNS = Endpoint(
    "kube-dns",
    "kube-system",
    {"k8s-app": "kube-dns"},
    {"kubernetes.io/metadata.name": "kube-system"},
)
API_SERVER = Endpoint("apiserver", ip="172.18.0.2")  # the `kubernetes` endpoint, after DNAT
PROVIDER = Endpoint("provider", ip="203.0.113.7")  # a market-data API on the internet
ELASTICSEARCH = Endpoint(
    "opensearch",
    "stockstream-logging",  # components/opensearch
    {"app.kubernetes.io/name": "opensearch"},
    {"kubernetes.io/metadata.name": "stockstream-logging"},
)
OPERATOR = Endpoint(
    "stockstream-operator",
    "stockstream-system",  # its own metrics
    {"app.kubernetes.io/name": "stockstream-operator"},
    {"kubernetes.io/metadata.name": "stockstream-system"},
)
EXTRA = {e.name: e for e in (KUBE_DNS, API_SERVER, PROVIDER, ELASTICSEARCH, OPERATOR)}
EXTRA_POD_PORTS = {ELASTICSEARCH.name: (9200, "TCP"), OPERATOR.name: (9100, "TCP")}

# Every flow a component needs: (source, destination, port, protocol). Sources and
# destinations are workload names (app.kubernetes.io/name) or the endpoints above.
REQUIRED: list[tuple[str, str, int, str]] = [
    ("dataflow", "broker", 9092, "TCP"),
    ("dataflow", "redis", 6379, "TCP"),
    ("dataflow", "dataflow", 2101, "TCP"),  # Bytewax cluster peers
    ("replay", "broker", 9092, "TCP"),
    ("redpanda-topics", "broker", 9092, "TCP"),
    ("broker", "broker", 9092, "TCP"),  # broker peers
    ("broker", "broker", 33145, "TCP"),
    ("ingest", "broker", 9092, "TCP"),
    ("ingest", "apiserver", 6443, "TCP"),  # watch of its StatefulSet
    ("ingest", "apiserver", 443, "TCP"),
    ("ingest", "provider", 443, "TCP"),  # Finnhub REST and WebSocket
    ("prometheus", "dataflow", 9100, "TCP"),
    ("prometheus", "replay", 9100, "TCP"),
    ("prometheus", "ingest", 9100, "TCP"),
    ("prometheus", "broker", 9644, "TCP"),
    ("prometheus", "apiserver", 6443, "TCP"),  # pod discovery
    ("prometheus", "apiserver", 443, "TCP"),
    ("prometheus", "stockstream-operator", 9100, "TCP"),
    ("prometheus", "alertmanager", 9093, "TCP"),
    ("alertmanager", "alert-receiver", 9095, "TCP"),
    ("grafana", "prometheus", 9090, "TCP"),
    ("grafana", "alertmanager", 9093, "TCP"),  # its contact point
    ("grafana", "opensearch", 9200, "TCP"),
    ("filebeat", "opensearch", 9200, "TCP"),
    ("filebeat", "apiserver", 6443, "TCP"),
    ("filebeat", "apiserver", 443, "TCP"),
    ("log-index-template", "opensearch", 9200, "TCP"),
    ("log-retention", "opensearch", 9200, "TCP"),
    ("operator", "apiserver", 6443, "TCP"),
    ("operator", "apiserver", 443, "TCP"),
    ("operator", "broker", 9092, "TCP"),  # topics
    ("operator", "redis", 6379, "TCP"),  # freshness (reads window:*)
    ("operator", "dataflow", 9100, "TCP"),  # an unready process's /readyz (its reason)
]
DNS = [("kube-dns", 53, "UDP"), ("kube-dns", 53, "TCP")]


def policies_of(objs: list[Manifest]) -> list[Manifest]:
    return [o for o in objs if o["kind"] == "NetworkPolicy"]


def app_namespace(objs: list[Manifest]) -> str:
    return find(objs, "StatefulSet", "redis")["metadata"]["namespace"]


def namespace_labels(objs: list[Manifest]) -> dict[str, dict[str, str]]:
    return {
        o["metadata"]["name"]: o["metadata"].get("labels", {})
        for o in objs
        if o["kind"] == "Namespace"
    }


def endpoints(objs: list[Manifest]) -> dict[str, tuple[Endpoint, list[tuple[int, str]]]]:
    """Rendered workloads (one pod each) by name, plus an operator pod in the app namespace
    (deploy/kustomize/operator is installed separately) and the endpoints above."""
    found = {}
    for pod, ports in pods_of(objs, namespace_labels(objs)):
        name = ALIASES.get(pod.name, pod.name)
        found[name] = (
            Endpoint(name, pod.namespace, pod.labels, pod.namespace_labels, pod.port_names),
            ports,
        )
    ns = app_namespace(objs)
    found["operator"] = (
        Endpoint(
            "operator",
            ns,
            {"app.kubernetes.io/name": "operator"},
            {"kubernetes.io/metadata.name": ns},
        ),
        [],
    )
    for extra in EXTRA.values():
        found[extra.name] = (extra, [])
    return found


@pytest.fixture(params=TARGETS)
def rendered(
    request: pytest.FixtureRequest, render: Callable[[str], list[Manifest]]
) -> tuple[str, list[Manifest]]:
    return request.param, render(request.param)


def test_every_pod_is_isolated_by_default(rendered: tuple[str, list[Manifest]]) -> None:
    _, objs = rendered
    ns = app_namespace(objs)
    (deny,) = [p for p in policies_of(objs) if p["metadata"]["name"] == "default-deny"]
    assert deny["metadata"]["namespace"] == ns
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def test_required_flows_are_allowed(rendered: tuple[str, list[Manifest]]) -> None:
    target, objs = rendered
    pods = endpoints(objs)
    policies = policies_of(objs)
    ns = app_namespace(objs)
    denied = []
    for src, dst, port, protocol in REQUIRED:
        rendered_here = src in pods and dst in pods and pods[src][0].namespace == ns
        if rendered_here and not allowed(policies, pods[src][0], pods[dst][0], port, protocol):
            denied.append((src, dst, port, protocol))
    for name, (pod, _) in pods.items():
        if pod.namespace == ns:
            for dst, port, protocol in DNS:
                if not allowed(policies, pod, pods[dst][0], port, protocol):
                    denied.append((name, dst, port, protocol))
    assert not denied, f"{target}: required flows denied: {denied}"


def test_every_required_flow_is_checked_somewhere(render: Callable[[str], list[Manifest]]) -> None:
    """Each table row has both ends rendered in at least one target (no row is dead)."""
    present: set[str] = set()
    for target in TARGETS:
        present |= set(endpoints(render(target)))
    assert {name for row in REQUIRED for name in row[:2]} <= present


def test_every_other_flow_is_denied(rendered: tuple[str, list[Manifest]]) -> None:
    """Between the rendered pods on every declared container port, from a stranger pod in the
    namespace and from another namespace, and to the API server / internet: only the table's
    flows pass (and the API server's clients' 443 and 6443 to any address)."""
    target, objs = rendered
    pods = endpoints(objs)
    policies = policies_of(objs)
    ns = app_namespace(objs)
    required = {(s, d, p, proto) for s, d, p, proto in REQUIRED}
    # The API server's address is not the manifests' to know (network-policies.yaml header):
    # its clients open 443 and 6443 to any address outside the pod network, nothing more.
    api_clients = {s for s, d, _, _ in REQUIRED if d == "apiserver"}
    required |= {
        (s, e.name, p, "TCP")
        for s in api_clients
        for e in EXTRA.values()
        if not e.is_pod
        for p in (443, 6443)
    }
    stranger = Endpoint(
        "stranger", ns, {"app.kubernetes.io/name": "debug"}, {"kubernetes.io/metadata.name": ns}
    )
    outsider = Endpoint(
        "outsider",
        "other",
        {"app.kubernetes.io/name": "dataflow"},
        {"kubernetes.io/metadata.name": "other"},
    )
    sources = [pod for pod, _ in pods.values() if pod.namespace == ns] + [stranger]
    leaks = []
    for src in sources:
        for dst, declared in pods.values():
            if dst.name == "kube-dns":
                continue  # DNS is open to every pod (test_required_flows_are_allowed)
            ports = declared
            if dst.name in EXTRA:
                ports = (
                    [(443, "TCP"), (6443, "TCP")] if not dst.is_pod else [EXTRA_POD_PORTS[dst.name]]
                )
            for port, protocol in ports:
                if (src.name, dst.name, port, protocol) in required:
                    continue
                if allowed(policies, src, dst, port, protocol):
                    leaks.append((src.name, dst.name, port, protocol))
    for dst, ports in pods.values():
        for port, protocol in ports:
            if dst.namespace == ns and allowed(policies, outsider, dst, port, protocol):
                leaks.append(("other-namespace", dst.name, port, protocol))
    assert not leaks, f"{target}: flows no rule asks for: {leaks}"


# Where API servers are: kind's node, this project's cluster (192.0.2.2: outside RFC 1918,
# the address the private-range `ipBlock`s cut ingestion off from), a managed cluster's
# public endpoint, an IPv6 control plane.
API_SERVER_ADDRESSES = ["172.18.0.2", "192.0.2.2", "198.51.100.20", "2001:db8::6443"]


@pytest.mark.parametrize("ip", API_SERVER_ADDRESSES)
def test_the_api_server_is_reached_wherever_it_is_by_its_clients_only(
    rendered: tuple[str, list[Manifest]],
    ip: str,
) -> None:
    """The pods that need the API server reach it on 443 (the Service) and 6443 (its endpoints
    after DNAT) whatever its address; no other pod of the namespace reaches those ports."""
    target, objs = rendered
    pods = endpoints(objs)
    policies = policies_of(objs)
    ns = app_namespace(objs)
    api_server = Endpoint("apiserver", ip=ip)
    clients = {src for src, dst, _, _ in REQUIRED if dst == "apiserver"}
    wrong = []
    for name, (pod, _) in pods.items():
        if pod.namespace != ns:
            continue
        for port in (443, 6443):
            if allowed(policies, pod, api_server, port) is not (name in clients):
                wrong.append((name, port))
    assert not wrong, f"{target}: API server at {ip}: {wrong} (clients: {sorted(clients)})"
    assert clients & set(pods), f"{target}: no client of the API server rendered"


def test_the_operator_in_its_own_namespace_reaches_redis_and_the_broker(
    render: Callable[[str], list[Manifest]],
) -> None:
    """deploy/kustomize/operator/install runs it in stockstream-system (no policies there): the
    app namespace's ingress rules must admit it, and only it."""
    objs = render("overlays/dev")
    pods = endpoints(objs)
    system = {"kubernetes.io/metadata.name": "stockstream-system"}
    operator = Endpoint(
        "operator", "stockstream-system", {"app.kubernetes.io/name": "stockstream-operator"}, system
    )
    impostor = Endpoint(
        "impostor", "stockstream-system", {"app.kubernetes.io/name": "other"}, system
    )
    for dst, port in (("redis", 6379), ("broker", 9092), ("dataflow", 9100)):
        assert allowed(policies_of(objs), operator, pods[dst][0], port), dst
        assert not allowed(policies_of(objs), impostor, pods[dst][0], port), dst
    assert not allowed(policies_of(objs), operator, pods["dataflow"][0], 2101)


def test_a_stranger_pod_cannot_reach_redis(render: Callable[[str], list[Manifest]]) -> None:
    """The case a policy-enforcing cluster would check live (see the README)."""
    objs = render("overlays/dev")
    pods = endpoints(objs)
    ns = app_namespace(objs)
    redis_pod = pods["redis"][0]
    for labels in ({"app.kubernetes.io/name": "debug"}, {}, {"app.kubernetes.io/name": "replay"}):
        stranger = Endpoint("stranger", ns, labels, {"kubernetes.io/metadata.name": ns})
        assert not allowed(policies_of(objs), stranger, redis_pod, 6379)
    assert allowed(policies_of(objs), pods["dataflow"][0], redis_pod, 6379)
    # Without the policies the same connection would pass: the evaluator is not vacuous.
    stranger = Endpoint(
        "stranger", ns, {"app.kubernetes.io/name": "debug"}, {"kubernetes.io/metadata.name": ns}
    )
    assert allowed([], stranger, redis_pod, 6379)


def test_prometheus_reaches_every_scraped_port(rendered: tuple[str, list[Manifest]]) -> None:
    """Every pod annotated for scraping (components/monitoring) is reachable from Prometheus
    on its annotated port."""
    target, objs = rendered
    pods = endpoints(objs)
    if "prometheus" not in pods:
        return  # no monitoring in this target: nothing scrapes
    scraped = []
    for workload in workloads(objs):
        annotations = pod_template(workload)["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            port = int(annotations["prometheus.io/port"])
            scraped.append(workload["metadata"]["name"])
            name = ALIASES.get(workload["metadata"]["name"], workload["metadata"]["name"])
            assert allowed(policies_of(objs), pods["prometheus"][0], pods[name][0], port), (
                f"{target}: Prometheus cannot scrape {workload['metadata']['name']}:{port}"
            )
    assert "dataflow" in scraped


# Pure checks of the evaluator itself on hand-written policies.
POD_A = Endpoint(
    "a", "ns", {"app": "a"}, {"kubernetes.io/metadata.name": "ns"}, {"web": (8080, "TCP")}
)
POD_B = Endpoint("b", "ns", {"app": "b"}, {"kubernetes.io/metadata.name": "ns"})
POD_C = Endpoint("c", "other", {"app": "a"}, {"kubernetes.io/metadata.name": "other"})


def policy(spec: dict) -> Manifest:
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": "ns"}, "spec": spec}


INGRESS_TO_A = {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress"]}


@pytest.mark.parametrize(
    ("policies", "src", "dst", "port", "expected"),
    [
        ([], POD_B, POD_A, 8080, True),
        ([policy(INGRESS_TO_A)], POD_B, POD_A, 8080, False),
        ([policy(INGRESS_TO_A)], POD_A, POD_B, 8080, True),  # B not isolated
        ([policy({**INGRESS_TO_A, "ingress": [{}]})], POD_C, POD_A, 1, True),  # empty rule: all
        (
            [policy({**INGRESS_TO_A, "ingress": [{"from": [{"podSelector": {}}]}]})],
            POD_C,
            POD_A,
            8080,
            False,
        ),  # podSelector alone: own namespace only
        (
            [policy({**INGRESS_TO_A, "ingress": [{"from": [{"namespaceSelector": {}}]}]})],
            POD_C,
            POD_A,
            8080,
            True,
        ),
        (
            [policy({**INGRESS_TO_A, "ingress": [{"ports": [{"port": "web"}]}]})],
            POD_B,
            POD_A,
            8080,
            True,
        ),  # named port of the destination
        (
            [policy({**INGRESS_TO_A, "ingress": [{"ports": [{"port": 8000, "endPort": 8079}]}]})],
            POD_B,
            POD_A,
            8080,
            False,
        ),
        (
            [policy({**INGRESS_TO_A, "ingress": [{"ports": [{"port": 8080, "protocol": "UDP"}]}]})],
            POD_B,
            POD_A,
            8080,
            False,
        ),
        (
            [
                policy(
                    {
                        "podSelector": {},
                        "egress": [
                            {
                                "to": [
                                    {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["203.0.113.0/24"]}}
                                ]
                            }
                        ],
                    }
                )
            ],
            POD_B,
            PROVIDER,
            443,
            False,
        ),
        (
            [policy({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]})],
            POD_B,
            PROVIDER,
            443,
            True,
        ),
        (
            [
                policy(
                    {
                        "podSelector": {
                            "matchExpressions": [
                                {"key": "app", "operator": "NotIn", "values": ["b"]}
                            ]
                        },
                        "policyTypes": ["Egress"],
                    }
                )
            ],
            POD_B,
            POD_A,
            8080,
            True,
        ),
    ],
)
def test_evaluator(
    policies: list[Manifest], src: Endpoint, dst: Endpoint, port: int, expected: bool
) -> None:
    assert allowed(policies, src, dst, port) is expected
