"""observability/prometheus/prometheus.yml (in-cluster) and prometheus.local.yml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.observability.conftest import PROMETHEUS, RULE_FILES, read_yaml


def check_config(promtool: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_local_config_is_valid_and_loads_every_rule_file(promtool: str) -> None:
    proc = check_config(promtool, PROMETHEUS / "prometheus.local.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in proc.stdout + proc.stderr


def test_incluster_config_is_valid(promtool_of_the_cluster: Path, tmp_path: Path) -> None:
    """Checked as the in-cluster Prometheus loads it: the ConfigMap's files side by side
    (prometheus.yml and the operator's scrape-operator.yml, which it reads through
    scrape_config_files), with promtool of the same release (Kubernetes discovery included)."""
    config = read_yaml(PROMETHEUS / "prometheus.yml")
    assert config["scrape_config_files"] == ["/etc/prometheus/config/scrape-*.yml"]
    config["scrape_config_files"] = [str(tmp_path / "scrape-*.yml")]
    config["rule_files"] = [str(PROMETHEUS / "rules" / "*.yaml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    operator_job = PROMETHEUS / "operator" / "scrape-operator.yml"
    (tmp_path / operator_job.name).write_text(operator_job.read_text())
    proc = check_config(str(promtool_of_the_cluster), tmp_path / "prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in proc.stdout + proc.stderr


def test_incluster_config_keeps_the_stockstream_and_sends_alerts() -> None:
    """Targets keep the StockStream they belong to (two in one namespace stay apart), and
    alerts go to the component's Alertmanager."""
    config = read_yaml(PROMETHEUS / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j]
    kept = {r.get("target_label"): r.get("source_labels") for r in job["relabel_configs"]}
    assert kept["stockstream"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"]
    (manager,) = config["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": ["alertmanager:9093"]}]


def test_incluster_config_discovers_annotated_pods_of_its_namespace() -> None:
    config = read_yaml(PROMETHEUS / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j]
    (sd,) = job["kubernetes_sd_configs"]
    assert sd["role"] == "pod"
    assert sd["namespaces"] == {"own_namespace": True}, "the Role only grants its own namespace"
    keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert keep and keep[0]["source_labels"] == [
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape"
    ]
    # Rule files are mounted from the prometheus-rules ConfigMap (monitoring component).
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yaml"]


def test_local_and_incluster_configs_agree_on_job_names() -> None:
    """Alerts select job="dataflow"/"replay"; locally those are static job names."""
    local = read_yaml(PROMETHEUS / "prometheus.local.yml")
    jobs = {j["job_name"] for j in local["scrape_configs"]}
    assert {"dataflow", "replay"} <= jobs
    assert local["rule_files"] == ["rules/*.yaml"]
    assert local["global"] == read_yaml(PROMETHEUS / "prometheus.yml")["global"]
