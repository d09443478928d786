"""Desired objects (services/operator/objects.py, feed.py): the invariants the coordinated
restart relies on, and what changes the cluster identity."""

from __future__ import annotations

from typing import Any

import pytest

from services.operator import feed, objects
from services.operator.model import parse_spec

BASE: dict[str, Any] = {"image": "stockstream:1", "redis": {"passwordSecret": {"name": "ra"}}}


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("processes", [1, 2, 3])
def test_statefulset_cluster_size_matches_replicas(processes: int) -> None:
    spec = parse_spec({**BASE, "dataflow": {"processes": processes}})
    sts = objects.statefulset("p", spec, processes)
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert sts["spec"]["replicas"] == processes
    assert env(c)["DATAFLOW_REPLICAS"] == str(processes)
    assert env(c)["DATAFLOW_STATEFULSET"] == "p-dataflow"
    assert env(c)["DATAFLOW_SERVICE"] == sts["spec"]["serviceName"] == "p-dataflow-headless"
    assert sts["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
    assert env(c)["REDIS_URL"] == "redis://:$(REDIS_PASSWORD)@redis:6379/0"
    user = parse_spec({**BASE, "redis": {"username": "writer", "passwordSecret": {"name": "r"}}})
    c_user = objects.statefulset("p", user, 1)["spec"]["template"]["spec"]["containers"][0]
    assert env(c_user)["REDIS_URL"] == "redis://writer:$(REDIS_PASSWORD)@redis:6379/0"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


CHANGES = [
    ("image", {"image": "stockstream:2"}, True),
    ("processes", {"dataflow": {"processes": 3}}, True),
    ("workers", {"dataflow": {"workersPerProcess": 2}}, True),
    ("windows", {"windows": {"lengthsSeconds": [60, 300]}}, True),
    ("lateness", {"windows": {"latenessSeconds": 7}}, True),
    ("feed replicas", {"feed": {"provider": "ingest-replay", "replicas": 2}}, False),
    ("suspend", {"suspend": True}, False),
    ("staleness", {"monitoring": {"staleAfterSeconds": 30}}, False),
]


@pytest.mark.parametrize(("what", "patch", "restarts"), CHANGES, ids=[c[0] for c in CHANGES])
def test_cluster_hash_changes_exactly_when_processes_must_be_replaced(
    what: str, patch: dict[str, Any], restarts: bool
) -> None:
    before = objects.cluster_hash("p", parse_spec(BASE))
    after = objects.cluster_hash("p", parse_spec({**BASE, **patch}))
    assert (before != after) is restarts, what


def test_dataflow_config_map_is_immutable_and_named_by_content() -> None:
    a = objects.config_map("p", parse_spec(BASE))
    b = objects.config_map("p", parse_spec({**BASE, "windows": {"topN": 5}}))
    assert a["immutable"] is True and a["metadata"]["name"] != b["metadata"]["name"]
    assert a["data"]["WINDOW_LENGTHS_S"] == "[60, 300, 900]"


def test_owned_sets_a_controller_reference() -> None:
    owner = {"metadata": {"name": "p", "uid": "u-1"}}
    obj = objects.owned(objects.pdb("p"), owner)
    (ref,) = obj["metadata"]["ownerReferences"]
    assert ref["uid"] == "u-1" and ref["kind"] == "StockStream" and ref["controller"] is True


def test_replay_loop_is_a_deployment_a_slice_is_a_job() -> None:
    loop = feed.feed_objects("p", parse_spec(BASE))
    assert [o["kind"] for o in loop] == ["Service", "Deployment"]
    sliced = feed.feed_objects(
        "p", parse_spec({**BASE, "feed": {"replay": {"loop": False, "limit": 500, "speed": 0}}})
    )
    job = sliced[1]
    assert job["kind"] == "Job"
    assert env(job["spec"]["template"]["spec"]["containers"][0])["REPLAY_LIMIT"] == "500"


def test_ingest_role_reads_only_its_own_statefulset() -> None:
    objs = feed.feed_objects(
        "p",
        parse_spec(
            {
                **BASE,
                "feed": {
                    "provider": "ingest-replay",
                    "replicas": 3,
                    "symbols": ["600000", "600519"],
                },
            }
        ),
    )
    kinds = {o["kind"]: o for o in objs}
    assert kinds["Role"]["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["statefulsets"],
            "resourceNames": ["p-ingest"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    assert kinds["StatefulSet"]["spec"]["replicas"] == 3
    assert kinds["ConfigMap"]["data"]["symbols.txt"] == "600000\n600519\n"
    c = kinds["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    assert env(c)["PROVIDER"] == "replay" and env(c)["STATEFULSET_NAME"] == "p-ingest"


def test_suspend_stops_the_feed() -> None:
    objs = feed.feed_objects("p", parse_spec({**BASE, "suspend": True}))
    assert objs[1]["spec"]["replicas"] == 0


def test_none_feed_has_no_objects() -> None:
    assert feed.feed_objects("p", parse_spec({**BASE, "feed": {"provider": "none"}})) == []
