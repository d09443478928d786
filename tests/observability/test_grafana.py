"""The Grafana dashboard and provisioning files."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.observability.conftest import read_yaml
from tests.observability.promql import KNOWN_METRICS, OBSERVABILITY, REPO, metric_names

GRAFANA = OBSERVABILITY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
MONITORING = REPO / "deploy/kustomize/components/monitoring"
# Grafana's built-in variables and this dashboard's own, replaced to check PromQL syntax.
GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": ".*",
    "$stockstream": ".*",
}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expr) of every panel target."""
    return [
        (panel["title"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def test_there_is_a_dashboard() -> None:
    assert [p.name for p in DASHBOARDS] == ["stockstream-pipeline.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dashboard = load(path)
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    assert dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    assert "id" not in dashboard or dashboard["id"] is None, "provisioned dashboards carry no id"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    boxes: list[tuple[str, set[tuple[int, int]]]] = []
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        for title, other in boxes:
            assert not cells & other, f"panels {title!r} and {panel['title']!r} overlap"
        boxes.append((panel["title"], cells))


NO_QUERY_PANELS = {"row", "alertlist"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_queries_known_metrics(path: Path) -> None:
    dashboard = load(path)
    for panel in panels(dashboard):
        if panel["type"] in NO_QUERY_PANELS:
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            used = metric_names(target["expr"])
            assert used, f"{panel['title']!r}: no metric in {target['expr']!r}"
            assert used <= KNOWN_METRICS, f"{panel['title']!r}: unknown {used - KNOWN_METRICS}"
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            match = re.fullmatch(r"label_values\((\w+)(?:\{[^{}]*\})?, *(\w+)\)", query)
            assert match, (
                f"variable {variable['name']}: expected label_values(metric[{{matchers}}], label)"
            )
            assert match.group(1) in KNOWN_METRICS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panel_queries_are_valid_promql(path: Path, promtool: str, tmp_path: Path) -> None:
    """Every query, with Grafana variables substituted, as a recording rule: promtool parses it."""
    rules = []
    for index, (_, query) in enumerate(queries(load(path))):
        expr = query
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"unsubstituted variable in {expr!r}"
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    rule_file = tmp_path / "dashboard_rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pipeline_dashboard_covers_the_pipeline() -> None:
    exprs = [expr for _, expr in queries(load(GRAFANA / "dashboards/stockstream-pipeline.json"))]
    joined = "\n".join(exprs)

    def some(pattern: str) -> bool:
        return any(re.search(pattern, expr) for expr in exprs)

    assert some(r"rate\(stockstream_ticks_decoded_total"), "tick rate"
    assert some(r"by \(reason\) \(rate\(stockstream_ticks_rejected_total"), "rejects by reason"
    assert some(r"by \(partition\) \(stockstream_watermark_lag_seconds"), "watermark lag"
    for q in ("0.50", "0.99"):
        assert some(
            rf"histogram_quantile\({q}, sum by \(le\) "
            r"\(rate\(stockstream_window_emit_latency_seconds_bucket"
        ), q
    assert some(r"rate\(stockstream_redis_errors_total"), "redis errors"
    assert "stockstream_leaderboard_writes_total" in joined


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_use_the_provisioned_prometheus(path: Path) -> None:
    dashboard = load(path)
    (ds_var,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert ds_var["query"] == "prometheus"
    provisioned = read_yaml(GRAFANA / "provisioning/datasources/datasources.yaml")["datasources"]
    (prom,) = [d for d in provisioned if d["type"] == "prometheus"]
    assert ds_var["current"]["value"] == prom["uid"]
    for panel in panels(dashboard):
        if panel["type"] in NO_QUERY_PANELS:
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": f"${{{ds_var['name']}}}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]


def test_alert_list_shows_every_prometheus_alert() -> None:
    """The dashboard lists the firing and pending alerts of the Prometheus rules (data-source
    managed), filtered by a name prefix that every rule's alert carries."""
    dashboard = load(GRAFANA / "dashboards/stockstream-pipeline.json")
    (alert_list,) = [
        p for p in panels(dashboard) if p["type"] == "alertlist" and "datasource" in p["options"]
    ]
    provisioned = read_yaml(GRAFANA / "provisioning/datasources/datasources.yaml")["datasources"]
    (prom,) = [d for d in provisioned if d["type"] == "prometheus"]
    options = alert_list["options"]
    assert options["datasource"] == prom["name"]
    assert options["stateFilter"]["firing"] and options["stateFilter"]["pending"]
    prefix = options["alertName"]
    rules = sorted((GRAFANA.parent / "prometheus/rules").glob("*.yaml"))
    alerts = [
        rule["alert"]
        for path in rules
        for group in read_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert alerts and all(name.startswith(prefix) for name in alerts)


def test_datasource_provisioning() -> None:
    data = read_yaml(GRAFANA / "provisioning/datasources/datasources.yaml")
    assert data["apiVersion"] == 1
    by_type = {d["type"]: d for d in data["datasources"]}
    assert by_type["prometheus"]["isDefault"] is True
    assert by_type["prometheus"]["url"] == "${PROMETHEUS_URL}"
    assert by_type["elasticsearch"]["jsonData"]["index"] == "stockstream-logs-*"
    assert by_type["elasticsearch"]["jsonData"]["timeField"] == "@timestamp"
    # The Grafana Deployment sets every variable the provisioning file reads.
    grafana = next(
        d
        for d in yaml.safe_load_all((MONITORING / "grafana.yaml").read_text())
        if d["kind"] == "Deployment"
    )
    env = {e["name"] for e in grafana["spec"]["template"]["spec"]["containers"][0]["env"]}
    provisioning = (GRAFANA / "provisioning/datasources/datasources.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)\}", provisioning))
    assert used <= env, f"not set on the Grafana container: {used - env}"


def test_dashboard_provider_path_is_where_the_dashboards_are_mounted() -> None:
    provider = read_yaml(GRAFANA / "provisioning/dashboards/dashboards.yaml")["providers"][0]
    deployment = next(
        d
        for d in yaml.safe_load_all((MONITORING / "grafana.yaml").read_text())
        if d["kind"] == "Deployment"
    )
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    kustomization = read_yaml(GRAFANA / "kustomization.yaml")
    generated = {g["name"]: g["files"] for g in kustomization["configMapGenerator"]}
    mounts = {
        volumes[m["name"]]["configMap"]["name"]: m["mountPath"]
        for m in pod["containers"][0]["volumeMounts"]
        if "configMap" in volumes[m["name"]]
    }
    assert mounts["grafana-dashboards"] == provider["options"]["path"]
    assert mounts["grafana-datasources"] == "/etc/grafana/provisioning/datasources"
    assert mounts["grafana-dashboard-providers"] == "/etc/grafana/provisioning/dashboards"
    assert mounts["grafana-alerting"] == "/etc/grafana/provisioning/alerting"
    assert generated["grafana-alerting"] == ["provisioning/alerting/stockstream-alerts.json"]
    assert sorted(generated["grafana-dashboards"]) == [f"dashboards/{p.name}" for p in DASHBOARDS]


def test_grafana_alerts_are_delivered_through_the_alertmanager() -> None:
    """Issue 23: Grafana had no contact point. Its alerts now go to the monitoring component's
    Alertmanager (the one Prometheus sends to), grouped per StockStream."""
    alerting = load(GRAFANA / "provisioning/alerting/stockstream-alerts.json")
    (contact,) = alerting["contactPoints"]
    (receiver,) = contact["receivers"]
    assert receiver["type"] == "prometheus-alertmanager"
    assert receiver["settings"]["url"] == "${ALERTMANAGER_URL}"
    assert receiver["disableResolveMessage"] is False
    (policy,) = alerting["policies"]
    assert policy["receiver"] == contact["name"]
    assert {"namespace", "stockstream"} <= set(policy["group_by"])
    deployments = [
        d
        for d in yaml.safe_load_all((MONITORING / "grafana.yaml").read_text())
        if d and d["kind"] == "Deployment"
    ]
    env = {
        e["name"]: e.get("value")
        for e in deployments[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    (service,) = [
        d
        for d in yaml.safe_load_all((MONITORING / "alertmanager.yaml").read_text())
        if d and d["kind"] == "Service"
    ]
    port = service["spec"]["ports"][0]["port"]
    assert env["ALERTMANAGER_URL"] == f"http://{service['metadata']['name']}:{port}"
