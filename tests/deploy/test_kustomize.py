"""Every overlay, the base and each component render, validate against the Kubernetes
OpenAPI schemas, and are wired together consistently."""

from __future__ import annotations

import re
import subprocess

import kubernetes_validate
import pytest

from tests.deploy.conftest import (
    EXTERNAL_SECRETS,
    OVERLAYS,
    REPO,
    container,
    env_of,
    find,
    pod_spec,
    pod_template,
    workloads,
)

K8S_VERSIONS = ["1.30", kubernetes_validate.latest_version()]
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PersistentVolume",
    "StorageClass",
    "CustomResourceDefinition",
}
REQUIRED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/part-of")


def test_overlays_exist() -> None:
    assert {"dev", "dev-logging", "prod"} <= set(OVERLAYS)


def test_install_script_is_idempotent(kustomize: str) -> None:
    proc = subprocess.run(
        [str(REPO / "scripts/install-kustomize.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == kustomize
    assert "install" not in proc.stderr.replace("install-kustomize:", ""), (
        f"second run re-installed:\n{proc.stderr}"
    )


def test_renders(target: str, render) -> None:
    objs = render(target)
    assert objs, f"{target} rendered nothing"
    for obj in objs:
        assert obj.get("apiVersion") and obj.get("kind") and obj["metadata"].get("name")
    ids = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs]
    assert len(ids) == len(set(ids)), "duplicate objects"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_objects_match_the_kubernetes_schema(target: str, version: str, render) -> None:
    errors = []
    for obj in render(target):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_schema_validation_catches_errors() -> None:
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": "not-a-number"}], "bogusField": 1},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSIONS[0], strict=True)


def test_overlays_place_everything_in_declared_namespaces(render) -> None:
    for overlay in OVERLAYS:
        objs = render(f"overlays/{overlay}")
        declared = {o["metadata"]["name"] for o in objs if o["kind"] == "Namespace"}
        assert declared, f"{overlay} declares no Namespace"
        for obj in objs:
            if obj["kind"] in CLUSTER_SCOPED:
                assert "namespace" not in obj["metadata"], obj["metadata"]["name"]
            else:
                what = f"{obj['kind']}/{obj['metadata']['name']}"
                assert obj["metadata"].get("namespace") in declared, (
                    f"{overlay}: {what} not in a declared namespace"
                )


def test_labels(target: str, render) -> None:
    for obj in render(target):
        labels = obj["metadata"].get("labels", {})
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Namespace":
            assert labels.get("app.kubernetes.io/part-of") == "stockstream", what
            continue
        for label in REQUIRED_LABELS:
            assert labels.get(label), f"{what} lacks label {label}"
        assert labels["app.kubernetes.io/part-of"] == "stockstream", what
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            template_labels = pod_template(obj)["metadata"]["labels"]
            for label in REQUIRED_LABELS:
                assert template_labels.get(label) == labels[label], f"{what} pod template {label}"
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
            assert obj["spec"]["selector"]["matchLabels"] == {
                "app.kubernetes.io/name": labels["app.kubernetes.io/name"]
            }, f"{what}: select on app.kubernetes.io/name only (selectors are immutable)"


def _refs(spec: dict) -> tuple[set[str], set[str]]:
    """ConfigMap and Secret names a pod spec refers to."""
    cms, secrets = set(), set()
    for c in spec.get("initContainers", []) + spec["containers"]:
        for source in c.get("envFrom", []):
            if "configMapRef" in source:
                cms.add(source["configMapRef"]["name"])
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
        for item in c.get("env", []):
            ref = item.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                cms.add(ref["configMapKeyRef"]["name"])
            if "secretKeyRef" in ref:
                secrets.add(ref["secretKeyRef"]["name"])
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            cms.add(volume["configMap"]["name"])
        if "secret" in volume:
            secrets.add(volume["secret"]["secretName"])
    return cms, secrets


def test_references_resolve(target: str, render) -> None:
    objs = render(target)
    for obj in workloads(objs):
        ns = obj["metadata"].get("namespace")
        spec = pod_spec(obj)
        cms, secrets = _refs(spec)
        have = {
            (o["kind"], o["metadata"]["name"]) for o in objs if o["metadata"].get("namespace") == ns
        }
        for name in cms:
            assert ("ConfigMap", name) in have, (
                f"{obj['metadata']['name']}: ConfigMap {name} missing"
            )
        for name in secrets:
            generated = ("Secret", name) in have
            external = target in ("base", "overlays/prod") and name in EXTERNAL_SECRETS
            assert generated or external, f"{obj['metadata']['name']}: Secret {name} missing"
        account = spec.get("serviceAccountName")
        if account:
            assert ("ServiceAccount", account) in have, f"ServiceAccount {account} missing"
    for binding in (o for o in objs if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        role_kind = binding["roleRef"]["kind"]
        assert any(
            o["kind"] == role_kind and o["metadata"]["name"] == binding["roleRef"]["name"]
            for o in objs
        ), f"{binding['metadata']['name']}: {role_kind} missing"
        for subject in binding["subjects"]:
            subject_ns = subject.get("namespace", binding["metadata"].get("namespace"))
            assert any(
                o["kind"] == "ServiceAccount"
                and o["metadata"]["name"] == subject["name"]
                and o["metadata"].get("namespace") == subject_ns
                for o in objs
            ), f"{binding['metadata']['name']}: subject {subject} missing"


def test_services_select_pods_and_ports_exist(target: str, render) -> None:
    objs = render(target)
    for svc in (o for o in objs if o["kind"] == "Service"):
        selector = svc["spec"]["selector"]
        matches = [
            w
            for w in workloads(objs)
            if w["metadata"].get("namespace") == svc["metadata"].get("namespace")
            and selector.items() <= pod_template(w)["metadata"]["labels"].items()
        ]
        assert matches, f"Service {svc['metadata']['name']} selects no pods"
        port_names = {
            p.get("name")
            for w in matches
            for c in pod_spec(w)["containers"]
            for p in c.get("ports", [])
        }
        for port in svc["spec"]["ports"]:
            target_port = port.get("targetPort", port["port"])
            if isinstance(target_port, str):
                assert target_port in port_names, (
                    f"{svc['metadata']['name']}: no port {target_port}"
                )


def test_probe_ports_are_declared(target: str, render) -> None:
    for obj in workloads(render(target)):
        for c in pod_spec(obj)["containers"]:
            names = {p["name"] for p in c.get("ports", []) if "name" in p}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                handler = c.get(probe, {})
                for kind in ("httpGet", "tcpSocket"):
                    port = handler.get(kind, {}).get("port")
                    if isinstance(port, str):
                        assert port in names, (
                            f"{obj['metadata']['name']}/{c['name']} {probe}: {port}"
                        )


def test_statefulsets_have_headless_governing_services(target: str, render) -> None:
    objs = render(target)
    for sts in (o for o in objs if o["kind"] == "StatefulSet"):
        svc = find(objs, "Service", sts["spec"]["serviceName"])
        assert svc["spec"].get("clusterIP") == "None", f"{svc['metadata']['name']} is not headless"
        if sts["metadata"]["name"] in ("dataflow", "redpanda"):
            # Peers resolve each other before any of them is ready.
            assert svc["spec"].get("publishNotReadyAddresses") is True
            assert sts["spec"].get("podManagementPolicy") == "Parallel"


def _dataflow_env(objs):
    sts = find(objs, "StatefulSet", "dataflow")
    return sts, env_of(objs, sts, "dataflow")


def test_dataflow_cluster_settings_match_the_statefulset(target: str, render) -> None:
    """The entrypoint derives peers from these variables: they must describe this StatefulSet."""
    objs = render(target)
    sts, env = _dataflow_env(objs)
    assert env["DATAFLOW_REPLICAS"] == str(sts["spec"].get("replicas", 1)), (
        "DATAFLOW_REPLICAS must equal spec.replicas (change both in the overlay)"
    )
    assert env["DATAFLOW_STATEFULSET"] == sts["metadata"]["name"]
    assert env["DATAFLOW_SERVICE"] == sts["spec"]["serviceName"]
    ports = {p["name"]: p["containerPort"] for p in container(sts, "dataflow")["ports"]}
    assert env["DATAFLOW_PORT"] == str(ports["timely"])
    assert env["METRICS_PORT"] == str(ports["metrics"])
    assert int(env["RECOVERY_PARTITIONS"]) >= sts["spec"].get("replicas", 1)
    mounts = {m["mountPath"] for m in container(sts, "dataflow")["volumeMounts"]}
    assert env["RECOVERY_DIR"] in mounts, "RECOVERY_DIR must be the PVC mount"
    assert container(sts, "dataflow")["command"] == ["dataflow-entrypoint"]
    topics = find(objs, "Job", "redpanda-topics")
    topic_env = {e["name"]: e["value"] for e in container(topics, "create-topics")["env"]}
    assert topic_env["TICKS_TOPIC"] == env["TICKS_TOPIC"]
    assert topic_env["DLQ_TOPIC"] == env["DLQ_TOPIC"]
    assert int(topic_env["TICKS_PARTITIONS"]) >= sts["spec"].get("replicas", 1), (
        "more dataflow processes than topic partitions leaves processes idle"
    )


def test_prod_runs_more_dataflow_processes_than_dev_and_has_pdbs(render) -> None:
    dev, _ = _dataflow_env(render("overlays/dev"))
    prod_objs = render("overlays/prod")
    prod, _ = _dataflow_env(prod_objs)
    assert prod["spec"]["replicas"] > dev["spec"]["replicas"] > 1
    pdbs = [o for o in prod_objs if o["kind"] == "PodDisruptionBudget"]
    covered = {p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for p in pdbs}
    assert "dataflow" in covered
    for pdb in pdbs:
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(
            selector.items() <= pod_template(w)["metadata"]["labels"].items()
            for w in workloads(prod_objs)
        ), f"PDB {pdb['metadata']['name']} selects nothing"


def test_images_are_pinned(target: str, render) -> None:
    for obj in workloads(render(target)):
        for c in pod_spec(obj)["containers"]:
            image = c["image"]
            if image in ("stockstream", "localhost:5000/stockstream"):
                continue  # built and tagged by skaffold (local-cluster: in the local registry)
            assert re.fullmatch(r"([\w.-]+(:\d+)?/)?[\w./-]+:[\w.-]+", image), f"{image}: pin a tag"
            assert not image.endswith(":latest"), image


def test_stockstream_image_runs_the_python_components(render) -> None:
    objs = render("overlays/dev")
    own = {
        o["metadata"]["name"]
        for o in workloads(objs)
        if any(c["image"] == "stockstream" for c in pod_spec(o)["containers"])
    }
    # the topics Job too: `python -m stockstream.create_topics` works against any Kafka broker;
    # and the development alert receiver of the monitoring component
    assert own == {"dataflow", "replay", "redpanda-topics", "alert-receiver"}


def test_redis_url_uses_the_secret_password(target: str, render) -> None:
    """The dataflow logs in as the ACL user `writer` with that user's Secret key, and Redis
    reads its passwords from the same Secret."""
    objs = render(target)
    env = container(find(objs, "StatefulSet", "dataflow"), "dataflow")["env"]
    names = [e["name"] for e in env]
    password = env[names.index("REDIS_PASSWORD")]
    url = env[names.index("REDIS_URL")]
    assert password["valueFrom"]["secretKeyRef"]["key"] == "writer-password"
    # $(VAR) expansion only sees variables declared earlier in the list.
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")
    assert url["value"] == "redis://writer:$(REDIS_PASSWORD)@redis:6379/0"
    redis_sts = find(objs, "StatefulSet", "redis")
    (volume,) = [v for v in pod_spec(redis_sts)["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == password["valueFrom"]["secretKeyRef"]["name"]
