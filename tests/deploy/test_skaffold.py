"""skaffold.yaml: builds the `stockstream` image, deploys kustomize overlays that exist,
profiles only swap overlays, and every port-forward points at a rendered Service port."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.conftest import KUSTOMIZE_ROOT, REPO, pod_spec, workloads

SKAFFOLD = yaml.safe_load((REPO / "skaffold.yaml").read_text())
PROFILES = {p["name"]: p for p in SKAFFOLD.get("profiles", [])}


def overlay_paths(profile: str | None) -> list[str]:
    manifests = SKAFFOLD["manifests"]
    if profile and "manifests" in PROFILES[profile]:
        manifests = PROFILES[profile]["manifests"]
    return manifests["kustomize"]["paths"]


def port_forwards(profile: str | None) -> list[dict]:
    if profile and "portForward" in PROFILES[profile]:
        return PROFILES[profile]["portForward"]
    return SKAFFOLD.get("portForward", [])


def test_schema_version_and_build() -> None:
    assert re.fullmatch(r"skaffold/v4beta\d+", SKAFFOLD["apiVersion"])
    assert SKAFFOLD["kind"] == "Config"
    (artifact,) = SKAFFOLD["build"]["artifacts"]
    assert artifact["image"] == "stockstream"
    assert (REPO / artifact.get("context", ".") / artifact["docker"]["dockerfile"]).is_file()
    assert SKAFFOLD["build"]["local"]["push"] is False, "kind loads images; nothing to push"
    assert "kubectl" in SKAFFOLD["deploy"]


def test_default_deploys_the_operated_path_and_plain_stays_reachable() -> None:
    """Issue 9: `skaffold dev` deploys the operator, its CRD and the example StockStream; the
    plain manifests are the `plain` profile (and logging/prod/local-cluster stay plain)."""
    assert overlay_paths(None) == ["deploy/kustomize/operator/dev"]
    assert overlay_paths("plain") == ["deploy/kustomize/overlays/dev"]
    assert overlay_paths("local-cluster") == ["deploy/kustomize/overlays/local-cluster"]


def deploy_of(profile: str | None) -> dict:
    """The deploy section in effect: a profile's replaces the top-level one whole (checked
    with `skaffold diagnose --yaml-only` on skaffold 2.16)."""
    if profile and "deploy" in PROFILES[profile]:
        return PROFILES[profile]["deploy"]
    return SKAFFOLD["deploy"]


@pytest.mark.parametrize("profile", [None, "local-images"])
def test_operated_deploys_install_the_crd_first_and_never_force(profile: str | None) -> None:
    """Issue 23: a fresh cluster answers "no matches for kind" to a StockStream applied with
    its CRD, so a hook applies the CRD and waits until it is established; and no `--force`,
    which would delete and recreate a StockStream whose edit a CEL rule refuses."""
    kubectl = deploy_of(profile)["kubectl"]
    assert "--force" not in kubectl.get("flags", {}).get("apply", [])
    (hook,) = kubectl["hooks"]["before"]
    command = " ".join(hook["host"]["command"])
    assert "deploy/kustomize/operator/install/crd.yaml" in command
    assert "condition=Established" in command
    assert command.index("apply") < command.index("wait")


@pytest.mark.parametrize("profile", ["plain", "logging", "prod", "local-cluster"])
def test_plain_deploys_keep_force_for_the_topics_job(profile: str) -> None:
    """The plain manifests run the topics Job (an immutable pod template with our image);
    they install no CRD (the plain profile is for clusters where none can be installed)."""
    kubectl = deploy_of(profile)["kubectl"]
    assert kubectl["flags"]["apply"] == ["--force"]
    assert "hooks" not in kubectl


def test_skaffold_sets_the_stockstream_image() -> None:
    """skaffold rewrites the image only of kinds it knows or is told about: the example
    StockStream's spec.image must become the image skaffold built."""
    allowed = SKAFFOLD["resourceSelector"]["allow"]
    assert {"groupKind": "StockStream.stockstream.io", "image": [".*"], "labels": [".*"]} in allowed


@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_overlays_exist_and_profiles_do_not_patch_by_index(profile: str | None) -> None:
    for path in overlay_paths(profile):
        assert (REPO / path / "kustomization.yaml").is_file(), path
        # overlays/, or the operator's compositions (issue 9: dev is the default)
        assert any(
            (REPO / path).resolve().is_relative_to(KUSTOMIZE_ROOT / d)
            for d in (
                "overlays",
                "operator/dev",
                "operator/dev-local-images",
                "operator/local-cluster",
            )
        )
    if profile:
        for patch in PROFILES[profile].get("patches", []):
            assert not re.search(r"/\d+(/|$)", patch["path"]), (
                f"profile {profile}: JSON patch by list index {patch['path']}; "
                "select another overlay and patch by name there"
            )


@pytest.mark.parametrize("profile", [None, *PROFILES])
def test_port_forwards_target_rendered_service_ports(profile: str | None, render) -> None:
    objs = [
        o
        for path in overlay_paths(profile)
        for o in render(str((REPO / path).relative_to(KUSTOMIZE_ROOT)))
    ]
    local_ports = [pf["localPort"] for pf in port_forwards(profile)]
    assert len(local_ports) == len(set(local_ports)), "two forwards on one local port"
    for pf in port_forwards(profile):
        assert pf["resourceType"] == "service"
        matches = [
            o
            for o in objs
            if o["kind"] == "Service"
            and o["metadata"]["name"] == pf["resourceName"]
            and o["metadata"].get("namespace") == pf["namespace"]
        ]
        assert matches, f"no Service {pf['namespace']}/{pf['resourceName']}"
        assert pf["port"] in {p["port"] for p in matches[0]["spec"]["ports"]}, pf


def test_redis_and_broker_are_forwarded_in_dev() -> None:
    forwarded = {pf["resourceName"]: pf["port"] for pf in port_forwards(None)}
    assert forwarded["redis"] == 6379
    assert forwarded["redpanda"] == 19092


def test_redpanda_external_listener_matches_the_forward(render) -> None:
    """Host tools reach the broker only if the advertised external address is the forward."""
    objs = render("overlays/dev")
    (redpanda,) = [o for o in workloads(objs) if o["metadata"]["name"] == "redpanda"]
    args = pod_spec(redpanda)["containers"][0]["args"]
    advertised = args[args.index("--advertise-kafka-addr") + 1]
    forward = {pf["resourceName"]: pf for pf in port_forwards(None)}["redpanda"]
    assert f"external://localhost:{forward['localPort']}" in advertised
