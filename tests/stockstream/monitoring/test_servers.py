"""Prometheus and Alertmanager configured from the project's files, with overrides."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import yaml

from stockstream.monitoring.servers import (
    ALERTMANAGER_CONFIG,
    AlertmanagerServer,
    alertmanager_config,
    prometheus_config,
)
from stockstream.monitoring.webhook import WebhookReceiver


def test_prometheus_config_overrides_targets_rules_and_intervals(
    tmp_path: Path, promtool: str
) -> None:
    config = prometheus_config(
        {
            "dataflow": [("127.0.0.1:1", {"pod": "dataflow-0"})],
            "ingest": [("127.0.0.1:2", {"pod": "ingest-0"})],
        },
        tmp_path,
        "127.0.0.1:3",
        "127.0.0.1:4",
        1,
    )
    assert config["global"]["scrape_interval"] == "1s"
    jobs = {j["job_name"]: j["static_configs"] for j in config["scrape_configs"]}
    assert jobs == {
        "prometheus": [{"targets": ["127.0.0.1:3"]}],
        "dataflow": [{"targets": ["127.0.0.1:1"], "labels": {"pod": "dataflow-0"}}],
        "ingest": [{"targets": ["127.0.0.1:2"], "labels": {"pod": "ingest-0"}}],
    }
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:4"]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [promtool, "check", "config", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_project_alertmanager_config_is_valid() -> None:
    proc = subprocess.run(
        ["amtool", "check-config", str(ALERTMANAGER_CONFIG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    hooks = [h for r in config["receivers"] for h in r.get("webhook_configs", [])]
    assert hooks and all(h["send_resolved"] for h in hooks)


def test_alertmanager_fast_config_keeps_the_route() -> None:
    config = alertmanager_config("http://127.0.0.1:9/x", fast=True)
    assert config["route"]["group_wait"] == config["route"]["group_interval"] == "1s"
    shipped = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())["route"]["routes"]
    assert [
        {k: v for k, v in r.items() if k != "group_interval"} for r in config["route"]["routes"]
    ] == [{k: v for k, v in r.items() if k != "group_interval"} for r in shipped]
    assert all(r.get("group_interval", "1s") == "1s" for r in config["route"]["routes"])
    assert {h["url"] for r in config["receivers"] for h in r["webhook_configs"]} == {
        "http://127.0.0.1:9/x"
    }


def test_alertmanager_routes_a_posted_alert_to_the_webhook(tmp_path: Path) -> None:
    """A critical alert goes to the `pager` receiver, resolved notifications follow."""
    with WebhookReceiver() as hook, AlertmanagerServer(hook.url, fast=True, workdir=tmp_path) as am:
        alert = {
            "labels": {"alertname": "StockstreamTest", "severity": "critical"},
            "annotations": {"summary": "s"},
        }
        request = urllib.request.Request(
            f"{am.url}/api/v2/alerts",
            data=json.dumps([alert]).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(request, timeout=10).close()
        got = hook.wait_for("StockstreamTest", "firing", 0.0, 60)
        assert got is not None and got.receiver == "pager"
