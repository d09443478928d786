"""The monitoring component, the Prometheus configuration and the alert rules fit together:
annotated pods become scrape targets with the `job` names the alerts select, rules and
dashboards are mounted where Prometheus and Grafana read them."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.deploy.conftest import REPO, container, find, pod_spec, pod_template, workloads

PROMETHEUS_DIR = REPO / "observability" / "prometheus"


def _expand(match: re.Match[str], replacement: str) -> str:
    """`replacement` with `$1` / `${1}` replaced by the groups of `match` (unmatched: "")."""
    return re.sub(
        r"\$(\d+)|\$\{(\d+)\}",
        lambda ref: match.group(int(ref.group(1) or ref.group(2))) or "",
        replacement,
    )


def relabel(labels: dict[str, str], configs: list[dict]) -> dict[str, str] | None:
    """Prometheus relabelling (replace/keep/drop; regexes fully anchored, RE2 ~ re)."""
    labels = dict(labels)
    for cfg in configs:
        action = cfg.get("action", "replace")
        sources = cfg.get("source_labels", [])
        value = cfg.get("separator", ";").join(labels.get(s, "") for s in sources)
        regex = re.compile(f"(?:{cfg.get('regex', '(.*)')})")
        match = regex.fullmatch(value)
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            result = _expand(match, cfg.get("replacement", "$1"))
            if result:
                labels[cfg["target_label"]] = result
            else:
                labels.pop(cfg["target_label"], None)
    return labels


def sd_labels(obj: dict, pod_name: str, ip: str, port: int) -> dict[str, str]:
    """What kubernetes_sd (role: pod) reports for one container port of the pod."""
    template = pod_template(obj)
    out = {
        "__address__": f"{ip}:{port}",
        "__metrics_path__": "/metrics",
        "job": "kubernetes-pods",
        "__meta_kubernetes_namespace": obj["metadata"]["namespace"],
        "__meta_kubernetes_pod_name": pod_name,
        "__meta_kubernetes_pod_phase": "Running",
        "__meta_kubernetes_pod_container_name": pod_spec(obj)["containers"][0]["name"],
    }

    def sanitize(key: str) -> str:
        return re.sub(r"[^a-zA-Z0-9_]", "_", key)

    for key, value in template["metadata"].get("labels", {}).items():
        out[f"__meta_kubernetes_pod_label_{sanitize(key)}"] = value
    for key, value in template["metadata"].get("annotations", {}).items():
        out[f"__meta_kubernetes_pod_annotation_{sanitize(key)}"] = value
    return out


@pytest.fixture(scope="module")
def scrape_job() -> dict:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j]
    return job


def targets(objs, scrape_job) -> dict[str, dict[str, str]]:
    """Scrape targets by workload name after relabelling every declared container port."""
    found: dict[str, set[tuple]] = {}
    for obj in workloads(objs):
        if obj["kind"] == "Job":
            continue
        ports = [
            p["containerPort"] for c in pod_spec(obj)["containers"] for p in c.get("ports", [])
        ]
        for port in ports or [80]:
            result = relabel(
                sd_labels(obj, f"{obj['metadata']['name']}-0", "10.1.2.3", port),
                scrape_job["relabel_configs"],
            )
            if result is not None:
                public = {k: v for k, v in result.items() if not k.startswith("__meta")}
                found.setdefault(obj["metadata"]["name"], set()).add(tuple(sorted(public.items())))
    out = {}
    for name, variants in found.items():
        assert len(variants) == 1, f"{name}: ports relabel to different targets {variants}"
        out[name] = dict(next(iter(variants)))
    return out


def test_annotated_pods_become_the_targets_the_alerts_expect(render, scrape_job) -> None:
    found = targets(render("overlays/dev"), scrape_job)
    assert set(found) == {"dataflow", "replay", "redpanda"}
    assert found["dataflow"]["__address__"] == "10.1.2.3:9100"
    assert found["dataflow"]["__metrics_path__"] == "/metrics"
    assert found["dataflow"]["job"] == "dataflow"
    assert found["dataflow"]["namespace"] == "stockstream"
    assert found["dataflow"]["pod"] == "dataflow-0"
    assert found["replay"]["job"] == "replay"
    assert found["redpanda"]["__address__"] == "10.1.2.3:9644"
    assert found["redpanda"]["__metrics_path__"] == "/public_metrics"


def test_ingest_is_scraped_when_its_component_precedes_monitoring(render, scrape_job) -> None:
    found = targets(render("components/ingestion+monitoring"), scrape_job)
    assert found["ingest"]["job"] == "ingest"


def test_jobs_selected_by_alerts_are_scraped(render, scrape_job) -> None:
    found = targets(render("components/ingestion+monitoring"), scrape_job)
    jobs = {t["job"] for t in found.values()}
    # the operator's own scrape job (observability/prometheus/operator, beside the operator)
    for path in (PROMETHEUS_DIR / "operator").glob("scrape-*.yml"):
        jobs |= {c["job_name"] for c in yaml.safe_load(path.read_text())["scrape_configs"]}
    for path in (PROMETHEUS_DIR / "rules").glob("*.yaml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                for selector in re.findall(r'job=~?"([^"]+)"', rule["expr"]):
                    for job in selector.split("|"):
                        assert job in jobs, f"{rule['alert']} selects job {job!r}, nobody has it"


def test_scrape_port_is_the_metrics_port(render) -> None:
    objs = render("overlays/dev")
    for name in ("dataflow", "replay"):
        obj = next(o for o in workloads(objs) if o["metadata"]["name"] == name)
        annotations = pod_template(obj)["metadata"]["annotations"]
        ports = {p["name"]: p["containerPort"] for p in container(obj, name)["ports"]}
        assert annotations["prometheus.io/port"] == str(ports["metrics"])


def test_prometheus_mounts_config_and_every_rule(render) -> None:
    objs = render("overlays/dev")
    prometheus = find(objs, "Deployment", "prometheus")
    c = container(prometheus, "prometheus")
    assert "--config.file=/etc/prometheus/config/prometheus.yml" in c["args"]
    volumes = {v["name"]: v for v in pod_spec(prometheus)["volumes"]}
    mounts = {
        volumes[m["name"]].get("configMap", {}).get("name"): m["mountPath"]
        for m in c["volumeMounts"]
    }
    rules_cm = [
        o
        for o in objs
        if o["kind"] == "ConfigMap"
        and o["metadata"]["name"] in mounts
        and mounts[o["metadata"]["name"]] == "/etc/prometheus/rules"
    ]
    assert rules_cm, "prometheus-rules is not mounted at /etc/prometheus/rules"
    assert set(rules_cm[0]["data"]) == {p.name for p in (PROMETHEUS_DIR / "rules").glob("*.yaml")}
    config_cm = [
        o
        for o in objs
        if o["kind"] == "ConfigMap"
        and mounts.get(o["metadata"]["name"]) == "/etc/prometheus/config"
    ]
    assert config_cm[0]["data"]["prometheus.yml"] == (PROMETHEUS_DIR / "prometheus.yml").read_text()
    role = find(objs, "Role", "prometheus")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]


def test_relabel_simulation_drops_unannotated_pods(scrape_job) -> None:
    meta = {"__address__": "10.0.0.1:80", "__meta_kubernetes_pod_phase": "Running"}
    assert relabel(meta, scrape_job["relabel_configs"]) is None
