"""Issue 7, test 6: the in-cluster Prometheus (components/monitoring, with the users'
observability/prometheus/prometheus.yml: Kubernetes pod discovery) scrapes every stockstream
pod that asks for it (all targets up) and loads every rule group of
observability/prometheus/rules/, each rule evaluating without error. Targets are matched to
pods by address."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import yaml

from tests.deploy.conftest import REPO, Deployed
from tests.deploy_support import poll

RULES = REPO / "observability/prometheus/rules"


def api(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def annotated_pods(deployed: Deployed) -> dict[str, str]:
    """pod IP:metrics port -> name of every running pod annotated for scraping."""
    return {
        f"{p['status']['podIP']}:{p['metadata']['annotations']['prometheus.io/port']}": p[
            "metadata"
        ]["name"]
        for p in deployed.kube.pods()
        if p["status"].get("phase") == "Running"
        and p["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"
    }


def test_prometheus_scrapes_every_pod_and_loads_the_rules(deployed: Deployed) -> None:
    wanted_groups = sorted(
        g["name"]
        for f in sorted(RULES.glob("*.yaml"))
        for g in yaml.safe_load(f.read_text())["groups"]
    )
    with deployed.kube.port_forward("svc/prometheus", 9090) as port:

        def all_up() -> dict[str, str] | None:
            targets = api(port, "/api/v1/targets?state=active")["activeTargets"]
            health = {t["labels"]["instance"]: t["health"] for t in targets}
            wanted = annotated_pods(deployed)
            if not wanted.keys() <= health.keys() or any(h != "up" for h in health.values()):
                return None
            return {name: health[address] for address, name in wanted.items()}

        targets = poll("every annotated pod scraped and up", all_up, 300, 5)
        assert {"dataflow-0", "dataflow-1", "ingest-0"} <= targets.keys(), targets

        def rules_ok() -> list[dict] | None:
            groups = api(port, "/api/v1/rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return groups if rules and all(r["health"] == "ok" for r in rules) else None

        groups = poll("every rule evaluated without error", rules_ok, 300, 5)
    assert sorted(g["name"] for g in groups) == wanted_groups
