"""Fixtures of the observability tests: promtool and the parsed alert rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.observability.promql import OBSERVABILITY, REPO

PROMETHEUS = OBSERVABILITY / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yaml"))
RULE_TEST_FILES = sorted((PROMETHEUS / "tests").glob("*_test.yaml"))


def load_alerts() -> list[dict]:
    """Every alerting rule of observability/prometheus/rules, with `_file` set."""
    alerts = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts.append({**rule, "_file": path})
    return alerts


ALERTS = load_alerts()


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool from PATH (scripts/bootstrap.sh installs Debian's `prometheus` package)."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found on PATH; run scripts/bootstrap.sh (apt package prometheus)")
    return path


@pytest.fixture(scope="session")
def promtool_of_the_cluster() -> Path:
    """promtool of the release the in-cluster Prometheus runs, with Kubernetes discovery
    (scripts/install-prometheus.sh builds it once from the Go module proxy; Debian's promtool
    knows neither kubernetes_sd_configs nor scrape_config_files)."""
    proc = subprocess.run(
        [str(REPO / "scripts" / "install-prometheus.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"scripts/install-prometheus.sh failed:\n{proc.stderr[-3000:]}")
    return Path(proc.stdout.strip().splitlines()[-1]) / "promtool"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "alert" in metafunc.fixturenames:
        metafunc.parametrize("alert", ALERTS, ids=[a["alert"] for a in ALERTS])


def read_yaml(path: Path):
    return yaml.safe_load(path.read_text())
