"""observability/prometheus/prometheus.yml (in-cluster) and prometheus.local.yml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.observability.conftest import PROMETHEUS, RULE_FILES, read_yaml


def check_config(promtool: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, "check", "config", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_local_config_is_valid_and_loads_every_rule_file(promtool: str) -> None:
    proc = check_config(promtool, PROMETHEUS / "prometheus.local.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in proc.stdout + proc.stderr


def test_incluster_config_is_valid(promtool: str, tmp_path: Path) -> None:
    """Checked as is when promtool has Kubernetes service discovery; Debian's promtool is built
    without it, so there the kubernetes_sd_configs are swapped for a static target and
    everything else (relabel regexes, globals, rule loading) is still checked."""
    original = PROMETHEUS / "prometheus.yml"
    proc = check_config(promtool, original)
    output = proc.stdout + proc.stderr
    if "kubernetes_sd_configs not found" not in output:
        assert proc.returncode == 0, output
        return
    config = read_yaml(original)
    for job in config["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["10.0.0.1:9100"]}]
    config["rule_files"] = [str(PROMETHEUS / "rules" / "*.yaml")]
    patched = tmp_path / "prometheus.yml"
    patched.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = check_config(promtool, patched)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in proc.stdout + proc.stderr


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
