"""The API server rejects bad StockStreams with the CRD's CEL rules (one test per rule) before
the operator sees them. Runs against the real kube-apiserver of the fast tier."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.dynamic.exceptions import DynamicApiError

from tests.services.operator.conftest import Cluster
from tests.services.operator.test_pod_template import ACCEPTED, REFUSED

CREATE_CASES = [
    (
        "slide multiple of 10",
        {"windows": {"slideSeconds": 15, "lengthsSeconds": [60]}},
        "slideSeconds must be a multiple of 10",
    ),
    (
        "lengths multiples of slide",
        {"windows": {"slideSeconds": 20, "lengthsSeconds": [60, 90]}},
        "multiple of windows.slideSeconds",
    ),
    (
        "max-price window multiple of 10",
        {"windows": {"maxPriceWindowSeconds": 305}},
        "maxPriceWindowSeconds must be a multiple of 10",
    ),
    (
        "processes x workers <= partitions",
        {"dataflow": {"processes": 3, "workersPerProcess": 2}, "broker": {"partitions": 4}},
        "must not exceed broker.partitions",
    ),
    (
        "processes <= recovery partitions",
        {"dataflow": {"processes": 3, "recovery": {"partitions": 2}}, "broker": {"partitions": 4}},
        "must not exceed dataflow.recovery.partitions",
    ),
    (
        "finnhub needs a token",
        {"feed": {"provider": "finnhub_quote"}},
        "finnhub providers need feed.finnhub.tokenSecret",
    ),
    (
        "symbols inline or ConfigMap",
        {"feed": {"symbols": ["A"], "symbolsConfigMap": {"name": "s"}}},
        "not both",
    ),
    (
        "replay is one producer",
        {"feed": {"provider": "replay", "replicas": 2, "symbols": []}},
        "replicas 1",
    ),
    ("redis URL scheme", {"redis": {"url": "http://redis:6379"}}, "must start with redis://"),
]


@pytest.mark.parametrize(
    ("patch", "message"), [c[1:] for c in CREATE_CASES], ids=[c[0] for c in CREATE_CASES]
)
def test_cel_rejects_bad_resource(
    cluster: Cluster,
    namespace: str,
    stockstream_body: Callable[..., dict[str, Any]],
    patch: dict[str, Any],
    message: str,
) -> None:
    body = stockstream_body("bad", **patch)
    if "symbols" in patch.get("feed", {}) and not patch["feed"]["symbols"]:
        body["spec"]["feed"].pop("symbols")
    with pytest.raises(DynamicApiError) as err:
        cluster.create(body, namespace)
    assert err.value.status == 422
    assert message in str(err.value.body)
    assert cluster.ss("bad", namespace) is None


IMMUTABLE_CASES = [
    ("topic", {"broker": {"topic": "other"}}, "broker.topic is immutable"),
    (
        "recovery storage size",
        {"dataflow": {"recovery": {"storageSize": "2Gi"}}},
        "storageSize is immutable",
    ),
    (
        "recovery partitions",
        {"dataflow": {"recovery": {"partitions": 16}}},
        "partitions is immutable",
    ),
]


@pytest.mark.parametrize(
    ("patch", "message"), [c[1:] for c in IMMUTABLE_CASES], ids=[c[0] for c in IMMUTABLE_CASES]
)
def test_cel_keeps_immutable_fields(
    cluster: Cluster,
    namespace: str,
    stockstream_body: Callable[..., dict[str, Any]],
    patch: dict[str, Any],
    message: str,
) -> None:
    body = stockstream_body("imm", suspend=True)
    cluster.create(body, namespace)
    with pytest.raises(DynamicApiError) as err:
        cluster.patch_ss("imm", namespace, patch)
    assert err.value.status == 422
    assert message in str(err.value.body)


def test_defaults_are_filled_by_the_api_server(cluster: Cluster, namespace: str) -> None:
    out = cluster.create(
        {
            "apiVersion": "stockstream.io/v1alpha1",
            "kind": "StockStream",
            "metadata": {"name": "d"},
            "spec": {"image": "stockstream:x", "suspend": True},
        },
        namespace,
    )
    spec = out["spec"]
    assert spec["dataflow"]["processes"] == 2 and spec["broker"]["partitions"] == 6
    assert spec["windows"]["lengthsSeconds"] == [60, 300, 900]
    assert spec["dataflow"]["recovery"]["storageSize"] == "1Gi"
    assert spec["feed"]["provider"] == "replay"


def _pod_template_body(name: str, patch: dict[str, Any]) -> dict[str, Any]:
    """A suspended StockStream with `patch` (spec.podTemplate, spec.dataflow...): only the
    API server's validation is exercised, no broker or Redis."""
    return {
        "apiVersion": "stockstream.io/v1alpha1",
        "kind": "StockStream",
        "metadata": {"name": name},
        "spec": {"image": "stockstream:test", "suspend": True, **patch},
    }


@pytest.mark.parametrize(
    ("patch", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_cel_refuses_bad_pod_templates_and_resources_with_the_python_message(
    cluster: Cluster, namespace: str, patch: dict[str, Any], message: str
) -> None:
    """The unit tests' table (test_pod_template.REFUSED) on the real API server: the CEL rule
    says what parse_spec says."""
    with pytest.raises(DynamicApiError) as err:
        cluster.create(_pod_template_body("bad", patch), namespace)
    assert err.value.status == 422
    assert message in json.loads(err.value.body or "{}")["message"]


@pytest.mark.parametrize("patch", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_cel_accepts_good_pod_templates_and_resources(
    cluster: Cluster, namespace: str, patch: dict[str, Any]
) -> None:
    cluster.create(_pod_template_body("good", patch), namespace)
    assert cluster.ss("good", namespace) is not None
