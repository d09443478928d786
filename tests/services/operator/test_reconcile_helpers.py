"""Pure helpers of services/operator/reconcile.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from services.operator.kube import Kube, RefusedError
from services.operator.observed import (
    RUNNING_NOT_READY,
    pod_ready,
    qualify,
    qualify_url,
    read_readyz,
    waiting_reasons,
)
from services.operator.reconcile import Reconciler

QUALIFY = [
    ("redpanda:9092", "ns", "redpanda.ns.svc:9092"),
    ("a:1,b.other:2", "ns", "a.ns.svc:1,b.other:2"),
    ("127.0.0.1:9092", "ns", "127.0.0.1:9092"),
    ("localhost:9092", "ns", "localhost:9092"),
]


@pytest.mark.parametrize(("hosts", "ns", "expected"), QUALIFY)
def test_qualify(hosts: str, ns: str, expected: str) -> None:
    assert qualify(hosts, ns) == expected


def test_qualify_url_keeps_path() -> None:
    assert qualify_url("redis://redis:6379/2", "ns") == "redis://redis.ns.svc:6379/2"


def test_terminating_pod_is_not_ready_and_waiting_reasons_are_named() -> None:
    ready = {
        "metadata": {"name": "x-0"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert pod_ready(ready)
    assert not pod_ready({**ready, "metadata": {"name": "x-0", "deletionTimestamp": "t"}})
    crashing = {
        "metadata": {"name": "x-1"},
        "status": {"containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
    }
    assert waiting_reasons([crashing, ready]) == "x-1: CrashLoopBackOff"


UNSCHEDULABLE = {
    "metadata": {"name": "x-2"},
    "status": {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu.",
            }
        ],
    },
}
CREATING = {
    "metadata": {"name": "x-3"},
    "status": {"containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]},
}
RUNNING_UNREADY = {
    "metadata": {"name": "x-5"},
    "status": {
        "containerStatuses": [
            {"ready": False, "state": {"running": {"startedAt": "2026-12-07T17:00:00Z"}}}
        ]
    },
}
RUNNING_READY = {
    "metadata": {"name": "x-6"},
    "status": {
        "containerStatuses": [
            {"ready": True, "state": {"running": {"startedAt": "2026-12-07T17:00:00Z"}}}
        ]
    },
}
PULL_FAILING = {
    "metadata": {"name": "x-4"},
    "status": {"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]},
}
OOM = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}


def crash_looping(state: dict[str, Any], ready: bool = False) -> dict[str, Any]:
    """A container that ran out of memory before, now in `state`."""
    return {
        "metadata": {"name": "x-7"},
        "status": {
            "containerStatuses": [
                {"ready": ready, "state": state, "lastState": OOM, "restartCount": 2}
            ]
        },
    }


# (pods, stuck_only, expected): a starting container is named, but is not "stuck".
WAITING = [
    ([UNSCHEDULABLE], False, "x-2: Unschedulable (0/1 nodes are available: 1 Insufficient cpu.)"),
    ([UNSCHEDULABLE], True, "x-2: Unschedulable (0/1 nodes are available: 1 Insufficient cpu.)"),
    ([CREATING], False, "x-3: ContainerCreating"),
    ([CREATING], True, ""),
    ([CREATING, PULL_FAILING], True, "x-4: ImagePullBackOff"),
    # a process failing its readiness probe (broker lost...): named, not stuck
    ([RUNNING_UNREADY, RUNNING_READY], False, "x-5: running, not ready (its /readyz says why)"),
    ([RUNNING_UNREADY], True, ""),
    # a crash loop names why the last run ended, in each of its states (seen on the cluster:
    # a rollback's reason said only WaitingForProcessesReady for an OOMKilled process)
    (
        [crash_looping({"waiting": {"reason": "CrashLoopBackOff"}})],
        True,
        "x-7: CrashLoopBackOff (last exit: OOMKilled)",
    ),
    ([crash_looping(OOM)], True, "x-7: OOMKilled"),
    (
        [crash_looping({"running": {}})],
        True,
        "x-7: running, not ready (its /readyz says why) (last exit: OOMKilled)",
    ),
    ([crash_looping({"running": {}}, ready=True)], True, ""),
]


@pytest.mark.parametrize(("pods", "stuck_only", "expected"), WAITING)
def test_waiting_reasons_name_unschedulable_and_stuck_pods(
    pods: list[dict], stuck_only: bool, expected: str
) -> None:
    assert waiting_reasons(pods, stuck_only=stuck_only) == expected


class _NothingThere:
    """A Kube stand-in: no objects; refuses writes other than the status and Events."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.events: list[tuple[str, str, str]] = []

    def get(self, *_: object) -> dict[str, Any] | None:
        return None

    def list(self, *_: object) -> list[dict[str, Any]]:
        return []

    def patch_status(self, _name: str, _ns: str, status: dict[str, Any]) -> None:
        self.status = status

    def event(self, _body: object, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


def test_spec_breaking_a_rule_fails_with_the_cel_message() -> None:
    """A CRD installed without CEL: the operator refuses the spec with the rule's message."""
    kube = _NothingThere()
    body = {
        "metadata": {"name": "x", "namespace": "ns", "generation": 1},
        "spec": {"image": "i", "redis": {"url": "http://redis"}},
    }
    status = Reconciler(cast(Kube, kube)).reconcile(body, {}, datetime.now(UTC))
    assert status["lifecycle"] == "Failed"
    assert status["message"] == "redis.url must start with redis://"
    assert ("Warning", "InvalidSpec", "redis.url must start with redis://") in kube.events


class _RefusingStatefulSets(_NothingThere):
    """A Kube stand-in: a running dataflow StatefulSet of an older template; the API server
    refuses every StatefulSet applied (as it refuses a malformed affinity)."""

    REFUSAL = (
        "the API server refused the StatefulSet x-dataflow: StatefulSet.apps "
        '"x-dataflow" is invalid: spec.template.spec.affinity.nodeAffinity.'
        "requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required "
        "value: must have at least one node selector term"
    )

    def __init__(self) -> None:
        super().__init__()
        self.sts = {
            "metadata": {"annotations": {"stockstream.io/cluster-hash": "old"}},
            "spec": {
                "replicas": 2,
                "template": {
                    "spec": {"containers": [{"env": [{"name": "DATAFLOW_REPLICAS", "value": "2"}]}]}
                },
            },
        }
        self.applied: list[tuple[str, bool]] = []
        self.patched: list[tuple[object, ...]] = []

    def get(self, *args: object) -> dict[str, Any] | None:
        return self.sts if args[1] == "StatefulSet" else None  # (api_version, kind, ...)

    def apply(self, obj: dict[str, Any], _ns: str, *, dry_run: bool = False) -> dict[str, Any]:
        self.applied.append((obj["kind"], dry_run))
        if obj["kind"] == "StatefulSet":
            raise RefusedError(self.REFUSAL)
        return obj

    def patch(self, *args: object) -> dict[str, Any]:
        self.patched.append(args)
        return self.sts


def test_a_template_the_api_server_refuses_fails_without_stopping_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A podTemplate change the CRD cannot check (affinity is kept as given) is tried with a
    server-side dry run before the running processes are stopped for it: refused, the
    StockStream is Failed (InvalidSpec) with the API server's words and keeps running."""
    monkeypatch.setattr(
        Reconciler, "_topics", lambda *_: ({"name": "ticks", "partitions": 6}, "", "", [])
    )
    kube = _RefusingStatefulSets()
    body = {
        "metadata": {"name": "x", "namespace": "ns", "generation": 2, "uid": "u"},
        "spec": {
            "image": "i",
            "podTemplate": {
                "spec": {
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": []
                            }
                        }
                    }
                }
            },
        },
    }
    status = Reconciler(cast(Kube, kube), check_freshness=False).reconcile(
        body, {"lifecycle": "Running"}, datetime.now(UTC)
    )
    assert status["lifecycle"] == "Failed"
    assert status["message"] == kube.REFUSAL
    assert ("Warning", "InvalidSpec", kube.REFUSAL) in kube.events
    assert ("StatefulSet", True) in kube.applied
    assert ("StatefulSet", False) not in kube.applied
    assert kube.patched == []  # replicas untouched: the old cluster runs on


@pytest.mark.parametrize(
    ("code", "body", "expected"),
    [
        (503, "broker unreachable since 12s", "broker unreachable"),
        (503, "dataflow loop stalled for 75s (bound 60s)", "dataflow loop stalled (bound 60s)"),
        (503, "", "HTTP 503"),
        (200, "ready", None),
    ],
)
def test_read_readyz_gives_the_process_reason_without_counters(
    code: int, body: str, expected: str | None
) -> None:
    """The operator asks a running, unready pod why (the kubelet keeps the probe's body)."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            assert self.path == "/readyz"
            self.send_response(code)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pod = {"status": {"podIP": "127.0.0.1"}}
        assert read_readyz(pod, server.server_address[1]) == expected
    finally:
        server.shutdown()
        server.server_close()


def test_waiting_reasons_carry_the_process_reason() -> None:
    pod = {
        "metadata": {"name": "x-dataflow-0"},
        "status": {
            "podIP": "10.0.0.9",
            "containerStatuses": [{"ready": False, "state": {"running": {}}}],
        },
    }
    assert waiting_reasons([pod], why_not_ready=lambda p: "broker unreachable") == (
        "x-dataflow-0: running, not ready (broker unreachable)"
    )
    assert waiting_reasons([pod]) == f"x-dataflow-0: {RUNNING_NOT_READY}"
    assert read_readyz({"status": {}}, 9100) is None  # no IP yet: nothing to ask
