"""The operator's per-StockStream metrics (services/operator/handlers.py): counters at 0
before the first pass, a pass counted by result with its duration, the lifecycle and the time
it was entered, every series removed on delete. The daemon runs against a fake reconciler."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from services.operator import handlers
from services.operator.handlers import lifecycle_since, tracked_lifecycle

NS = "metrics-test"
# kopf types its decorated handlers as callbacks that take every kwarg kopf passes; the tests
# pass what the handlers read.
RUN: Any = handlers.run
DELETE: Any = handlers.delete


def sample(metric: str, /, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, {"namespace": NS, **labels})


def series_of(stockstream: str) -> list[str]:
    """Names of every sample of `stockstream` in the registry."""
    return [
        s.name
        for family in REGISTRY.collect()
        for s in family.samples
        if s.labels.get("namespace") == NS and s.labels.get("name") == stockstream
    ]


class Body(dict[str, Any]):
    """What the daemon reads of kopf's Body: `metadata` and `get`."""

    def __init__(self, name: str, status: Mapping[str, Any] | None = None) -> None:
        super().__init__(status=dict(status or {}), spec={})
        self.metadata: dict[str, Any] = {
            "name": name,
            "namespace": NS,
            "generation": 1,
            "uid": f"uid-{name}",
        }


class Stopped:
    """kopf's DaemonStopped for `passes` passes: each wait after a pass uses one up and ends
    the wait at once (as a spec change does: a new generation)."""

    def __init__(self, passes: int, body: Body) -> None:
        self.left, self.body = passes, body

    def __bool__(self) -> bool:
        return self.left <= 0

    async def wait(self, _timeout: float) -> None:
        self.left -= 1
        self.body.metadata["generation"] += 1


class Reconciler:
    """Returns the next status of `statuses` per pass, or raises it if it is an exception."""

    def __init__(self, *statuses: dict[str, Any] | Exception) -> None:
        self.statuses = list(statuses)

    def reconcile(self, _body: Any, _previous: Mapping[str, Any]) -> dict[str, Any]:
        time.sleep(0.01)
        out = self.statuses.pop(0)
        if isinstance(out, Exception):
            raise out
        return out


def run_daemon(body: Body, reconciler: Reconciler, passes: int) -> None:
    handlers.STATE.update(
        reconciler=reconciler,
        guard=lambda: None,
        settings=SimpleNamespace(reconcile_interval_s=60.0),
    )
    asyncio.run(
        RUN(stopped=Stopped(passes, body), body=body, name=body.metadata["name"], namespace=NS)
    )


def progressing(since: str) -> dict[str, Any]:
    return {
        "type": "Progressing",
        "status": "True",
        "reason": "StoppingProcesses",
        "lastTransitionTime": since,
    }


def test_passes_are_counted_by_result_with_their_duration() -> None:
    run_daemon(
        Body("counted"),
        Reconciler(RuntimeError("api down"), {"lifecycle": "Deploying"}, {"lifecycle": "Running"}),
        passes=3,
    )
    total = "stockstream_operator_reconciles_total"
    assert sample(total, name="counted", result="error") == 1
    assert sample(total, name="counted", result="ok") == 2
    count = sample("stockstream_operator_reconcile_duration_seconds_count", name="counted")
    assert count == 3
    assert (
        sample("stockstream_operator_reconcile_duration_seconds_sum", name="counted") or 0
    ) >= 0.03
    assert sample("stockstream_operator_lifecycle", name="counted", lifecycle="Running") == 1
    assert sample("stockstream_operator_lifecycle", name="counted", lifecycle="Deploying") == 0


def test_counters_exist_at_zero_before_anything_happened() -> None:
    """A pass that always fails still shows every counter (0 rollbacks, 0 ok passes)."""
    run_daemon(Body("failing"), Reconciler(RuntimeError("bug")), passes=1)
    assert sample("stockstream_operator_reconciles_total", name="failing", result="ok") == 0
    assert sample("stockstream_operator_rollbacks_total", name="failing") == 0
    assert sample("stockstream_operator_reconciles_total", name="failing", result="error") == 1
    # no successful pass: no lifecycle is claimed
    assert sample("stockstream_operator_lifecycle_since_timestamp_seconds", name="failing") is None


def test_since_is_when_this_process_saw_the_lifecycle_change() -> None:
    before = time.time()
    run_daemon(
        Body("moving"), Reconciler({"lifecycle": "Deploying"}, {"lifecycle": "Running"}), passes=2
    )
    since = sample("stockstream_operator_lifecycle_since_timestamp_seconds", name="moving")
    assert since is not None and before <= since <= time.time()


def test_a_transition_in_progress_keeps_its_start_across_an_operator_restart() -> None:
    """The new leader's first pass finds the StockStream Upgrading since 10:00 (the status the
    old one wrote): the stuck-lifecycle alert counts from then, not from the handover."""
    status = {"lifecycle": "Upgrading", "conditions": [progressing("2030-01-01T10:00:00+00:00")]}
    run_daemon(Body("handed-over", status), Reconciler(dict(status)), passes=1)
    assert (
        sample("stockstream_operator_lifecycle_since_timestamp_seconds", name="handed-over")
        == datetime(2030, 1, 1, 10, tzinfo=UTC).timestamp()
    )


def test_lifecycle_since() -> None:
    upgrading = {"lifecycle": "Upgrading", "conditions": [progressing("2030-01-01T10:00:00Z")]}
    ten = datetime(2030, 1, 1, 10, tzinfo=UTC).timestamp()
    assert lifecycle_since(upgrading, carried=True, now=5.0) == ten
    assert lifecycle_since(upgrading, carried=False, now=5.0) == 5.0  # seen moving there
    failed = {"lifecycle": "Failed", "conditions": [progressing("2030-01-01T10:00:00Z")]}
    assert lifecycle_since(failed, carried=True, now=5.0) == 5.0  # not a transitional state
    bad = {"lifecycle": "Deploying", "conditions": [progressing("yesterday")]}
    assert lifecycle_since(bad, carried=True, now=5.0) == 5.0
    assert lifecycle_since({"lifecycle": "Deploying"}, carried=True, now=5.0) == 5.0


@pytest.mark.parametrize(
    ("tracked", "before", "after", "kept"),
    [
        (("Running", 1.0), {"lifecycle": "Running"}, "Running", True),
        (("Running", 1.0), {"lifecycle": "Running"}, "Rescaling", False),
        (None, {"lifecycle": "Running"}, "Running", False),
    ],
)
def test_tracked_lifecycle(
    tracked: tuple[str, float] | None, before: dict[str, Any], after: str, kept: bool
) -> None:
    got = tracked_lifecycle(tracked, {"lifecycle": after}, before)
    assert got[0] == after
    assert (got == tracked) is kept


def test_delete_removes_every_series_of_the_stockstream_only() -> None:
    run_daemon(Body("gone"), Reconciler({"lifecycle": "Running"}), passes=1)
    run_daemon(Body("kept"), Reconciler({"lifecycle": "Running"}), passes=1)
    assert len(series_of("gone")) > 20
    kube = SimpleNamespace(list=lambda *_: [], delete=lambda *_: None)
    handlers.STATE.update(kube=kube, guard=lambda: None)
    DELETE(body=Body("gone"), name="gone", namespace=NS)
    assert series_of("gone") == []
    assert sample("stockstream_operator_lifecycle", name="kept", lifecycle="Running") == 1
    assert sample("stockstream_operator_rollbacks_total", name="kept") == 0


def test_a_pass_ending_after_the_delete_leaves_no_series() -> None:
    """The StockStream is deleted while a pass runs (the delete handler may already have
    removed its series): the daemon stops and removes what the pass exported."""

    class Deleting(Reconciler):
        def reconcile(self, body: Any, previous: Mapping[str, Any]) -> dict[str, Any]:
            body.metadata["deletionTimestamp"] = "2030-01-01T10:00:00Z"
            return super().reconcile(body, previous)

    run_daemon(Body("deleted"), Deleting({"lifecycle": "Running"}), passes=5)
    assert series_of("deleted") == []
