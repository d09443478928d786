"""The operator's manifests (deploy/kustomize/operator/): hardened, least RBAC, and the dev
composition replaces the plain pipeline by the operated one."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
OPERATOR = ROOT / "deploy/kustomize/operator"


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_operator_deployment_is_hardened_and_highly_available() -> None:
    objs = docs(OPERATOR / "install/deployment.yaml")
    (deploy,) = [d for d in objs if d["kind"] == "Deployment"]
    spec = deploy["spec"]
    assert spec["replicas"] == 2 and spec["strategy"]["type"] == "RollingUpdate"
    pod = spec["template"]["spec"]
    # spread across nodes when there are several, but schedulable on one
    anti = pod["affinity"]["podAntiAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti
    (term,) = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    (pdb,) = [d for d in objs if d["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == spec["selector"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["LEASE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (c,) = pod["containers"]
    assert c["command"] == ["python", "-m", "services.operator"]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"livenessProbe", "readinessProbe", "resources"} <= set(c)
    assert pod["serviceAccountName"] == "stockstream-operator"


def test_rbac_has_no_wildcards_and_reads_secrets_only_by_name() -> None:
    (role,) = [d for d in docs(OPERATOR / "install/rbac.yaml") if d["kind"] == "ClusterRole"]
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        if "secrets" in rule["resources"]:
            assert rule["verbs"] == ["get"]
        if "pods" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}


def test_lease_rbac_is_namespaced_and_minimal() -> None:
    objs = docs(OPERATOR / "install/rbac.yaml")
    (role,) = [d for d in objs if d["kind"] == "Role"]
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    (binding,) = [d for d in objs if d["kind"] == "RoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == "stockstream-operator"
    (cluster_role,) = [d for d in objs if d["kind"] == "ClusterRole"]
    assert all("leases" not in r["resources"] for r in cluster_role["rules"])


def test_dev_composition_runs_the_operated_pipeline_only() -> None:
    kustomize = (
        subprocess.run(
            [str(ROOT / "scripts/install-kustomize.sh")], check=True, capture_output=True, text=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    out = subprocess.run(
        [kustomize, "build", str(OPERATOR / "dev")], check=True, capture_output=True, text=True
    ).stdout
    objs = [d for d in yaml.safe_load_all(out) if d]
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    assert ("StatefulSet", "dataflow") not in names and ("Deployment", "replay") not in names
    assert ("Job", "redpanda-topics") not in names
    assert ("CustomResourceDefinition", "stockstreams.stockstream.io") in names
    (ss,) = [o for o in objs if o["kind"] == "StockStream"]
    secret_names = {o["metadata"]["name"] for o in objs if o["kind"] == "Secret"}
    assert ss["spec"]["redis"]["passwordSecret"]["name"] in secret_names
    assert ss["metadata"]["namespace"] == "stockstream"
