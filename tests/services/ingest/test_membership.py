"""Membership: ordinals from pod names, and the watch handler on fake event streams (the
shapes the kubernetes package yields: model objects, raw dicts, bookmarks, 410 errors)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import (
    V1LabelSelector,
    V1ObjectMeta,
    V1PodTemplateSpec,
    V1StatefulSet,
    V1StatefulSetSpec,
)

from services.ingest.membership import WatchOutcome, follow_replicas, ordinal_from_name


@pytest.mark.parametrize(
    ("name", "ordinal"),
    [("ingest-0", 0), ("ingest-3", 3), ("my-ingest-12", 12), ("ingest-007", 7), ("a-1\n", 1)],
)
def test_ordinal_from_name(name: str, ordinal: int) -> None:
    assert ordinal_from_name(name) == ordinal


@pytest.mark.parametrize("name", ["ingest", "ingest-", "ingest-x", "", "ingest-3a"])
def test_bad_pod_names(name: str) -> None:
    with pytest.raises(ValueError):
        ordinal_from_name(name)


def sts(replicas: int | None, version: str, name: str = "ingest") -> V1StatefulSet:
    return V1StatefulSet(
        metadata=V1ObjectMeta(name=name, resource_version=version),
        spec=V1StatefulSetSpec(
            replicas=replicas, selector=V1LabelSelector(), template=V1PodTemplateSpec()
        ),
    )


def event(kind: str, obj: Any) -> dict[str, Any]:
    return {"type": kind, "object": obj, "raw_object": {}}


@pytest.mark.parametrize(
    ("events", "current", "changes", "outcome"),
    [
        ([event("ADDED", sts(2, "10"))], None, [2], WatchOutcome("10", False)),
        (
            [
                event("ADDED", sts(2, "10")),
                event("MODIFIED", sts(2, "11")),  # status change only: no re-shard
                event("MODIFIED", sts(3, "12")),
                event("BOOKMARK", {"metadata": {"resourceVersion": "15"}}),
                event("MODIFIED", sts(1, "16")),
            ],
            None,
            [2, 3, 1],
            WatchOutcome("16", False),
        ),
        ([event("ADDED", sts(2, "10"))], 2, [], WatchOutcome("10", False)),  # known count
        ([event("MODIFIED", sts(None, "5"))], 3, [1], WatchOutcome("5", False)),  # unset = 1
        (
            [event("DELETED", sts(4, "20")), event("ADDED", sts(4, "21"))],
            2,
            [4],
            WatchOutcome("21", False),
        ),
        ([event("ADDED", sts(5, "30", name="other"))], 2, [], WatchOutcome("30", False)),
        (
            [
                event("MODIFIED", sts(3, "40")),
                event("ERROR", {"code": 410}),
                event("ADDED", sts(9, "1")),
            ],
            2,
            [3],
            WatchOutcome(None, True),  # too old: relist, and nothing after the error applies
        ),
        (
            [event("ERROR", {"code": 500, "message": "boom"})],
            2,
            [],
            WatchOutcome("7", False),
        ),
        (  # raw dicts (watch with deserialize=False) work too
            [
                event(
                    "MODIFIED",
                    {
                        "metadata": {"name": "ingest", "resourceVersion": "8"},
                        "spec": {"replicas": 6},
                    },
                )
            ],
            2,
            [6],
            WatchOutcome("8", False),
        ),
    ],
)
def test_follow_replicas(
    events: list[dict[str, Any]], current: int | None, changes: list[int], outcome: WatchOutcome
) -> None:
    seen: list[int] = []
    result = follow_replicas(iter(events), "ingest", seen.append, current, resource_version="7")
    assert seen == changes
    assert result == outcome
