"""Fixtures of the deployment tests: a kustomize binary (installed on demand by
scripts/install-kustomize.sh) and the rendered manifests of every overlay, of the base and of
the base combined with each optional component."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_feed_support import Feed
from tests.deploy_support import NAMESPACE, Kube, kube_for, kustomize_binary, skaffold_run

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZE_ROOT = REPO / "deploy" / "kustomize"
OVERLAYS = sorted(
    p.name for p in (KUSTOMIZE_ROOT / "overlays").iterdir() if (p / "kustomization.yaml").exists()
)
COMPONENTS = sorted(
    p.name for p in (KUSTOMIZE_ROOT / "components").iterdir() if (p / "kustomization.yaml").exists()
)
# Components rendered together with the base, in the order an overlay must list them.
COMPONENT_SETS = {
    "monitoring": ["monitoring"],
    "logging": ["logging"],
    "ingestion": ["ingestion"],
    "ingestion+monitoring": ["ingestion", "monitoring"],
}
TARGETS = [
    "base",
    *(f"overlays/{o}" for o in OVERLAYS),
    *(f"components/{c}" for c in COMPONENT_SETS),
]
# Secrets an environment must create itself (never generated outside the dev overlays).
EXTERNAL_SECRETS = {"redis-auth", "grafana-admin"}

Manifest = dict


def build(kustomize: str, path: Path) -> list[Manifest]:
    proc = subprocess.run(
        [kustomize, "build", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"kustomize build {path} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="session")
def kustomize() -> str:
    """Path of kustomize, installed into .cache/ by scripts/install-kustomize.sh if needed."""
    return kustomize_binary()


def _component_kustomization(tmp: Path, components: list[str]) -> Path:
    """A throw-away overlay: base + `components` in a namespace, with the secrets they need."""
    rel = os.path.relpath(KUSTOMIZE_ROOT, tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "stockstream-test",
                "resources": [f"{rel}/base"],
                "components": [f"{rel}/components/{c}" for c in components],
                "generatorOptions": {
                    "labels": {
                        "app.kubernetes.io/name": "test-secrets",
                        "app.kubernetes.io/part-of": "stockstream",
                    }
                },
                "secretGenerator": [
                    {
                        "name": "redis-auth",
                        "literals": ["password=test", "writer-password=w", "reader-password=r"],
                    },
                    {"name": "grafana-admin", "literals": ["admin-user=a", "admin-password=b"]},
                ],
            }
        )
    )
    return tmp


@pytest.fixture(scope="session")
def render(
    kustomize: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], list[Manifest]]:
    """render("overlays/dev") -> the rendered objects (cached for the session)."""
    cache: dict[str, list[Manifest]] = {}

    def _render(target: str) -> list[Manifest]:
        if target not in cache:
            if target.startswith("components/"):
                name = target.split("/", 1)[1]
                path = _component_kustomization(
                    tmp_path_factory.mktemp(name.replace("+", "-")), COMPONENT_SETS[name]
                )
            else:
                path = KUSTOMIZE_ROOT / target
            cache[target] = build(kustomize, path)
        return cache[target]

    return _render


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        metafunc.parametrize("target", TARGETS)


# ---------------------------------------------------------------- helpers for the tests

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def pod_spec(obj: Manifest) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if obj["kind"] in WORKLOAD_KINDS:
        return obj["spec"]["template"]["spec"]
    raise AssertionError(f"{obj['kind']} {obj['metadata']['name']} has no pod spec")


def pod_template(obj: Manifest) -> dict:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def workloads(objs: list[Manifest]) -> list[Manifest]:
    return [o for o in objs if o["kind"] in WORKLOAD_KINDS]


def find(objs: list[Manifest], kind: str, name: str) -> Manifest:
    """The object of `kind` whose name is `name` (or `name-<hash>` for generated ones)."""
    found = [
        o
        for o in objs
        if o["kind"] == kind and (o["metadata"]["name"] == name or _unhashed(o) == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def _unhashed(obj: Manifest) -> str:
    name = obj["metadata"]["name"]
    if obj["kind"] in ("ConfigMap", "Secret") and "-" in name:
        base, suffix = name.rsplit("-", 1)
        if len(suffix) == 10:
            return base
    return name


def container(obj: Manifest, name: str) -> dict:
    (found,) = [c for c in pod_spec(obj)["containers"] if c["name"] == name]
    return found


def env_of(objs: list[Manifest], obj: Manifest, container_name: str) -> dict[str, str]:
    """The container's environment: envFrom ConfigMaps, then env values (no secrets)."""
    c = container(obj, container_name)
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            cm = [
                o
                for o in objs
                if o["kind"] == "ConfigMap"
                and o["metadata"]["name"] == source["configMapRef"]["name"]
            ]
            assert cm, f"envFrom ConfigMap {source['configMapRef']['name']} not rendered"
            env.update(cm[0].get("data", {}))
    for item in c.get("env", []):
        env[item["name"]] = item.get("value", "<from>")
    return env


# ---------------------------------------------------------------- the real cluster (issue 7)


@dataclass
class Deployed:
    """stockstream deployed by `skaffold run -p local-cluster`, shared by the
    test_on_cluster_* modules (which run in file order and build on each other)."""

    kube: Kube
    feed: Feed = field(default_factory=Feed)


@pytest.fixture(scope="package")
def deployed(kube_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    """A fresh `stockstream` namespace deployed with skaffold on the test cluster; deleted
    after the last test of this package, so that its pods (a live ingestion among them) do
    not load the machine under the tests that follow (tests/faults, the operator's end to
    end in tests/operated)."""
    kube = kube_for(kube_cluster)
    kube.run(
        "delete",
        "namespace",
        NAMESPACE,
        "--ignore-not-found",
        "--wait=true",
        namespaced=False,
        timeout_s=600,
    )
    skaffold_run(kube, tmp_path_factory.mktemp("skaffold") / "skaffold-run.log")
    yield Deployed(kube)
    kube.run(
        "delete",
        "namespace",
        NAMESPACE,
        "--ignore-not-found",
        "--wait=false",
        namespaced=False,
        check=False,
    )
