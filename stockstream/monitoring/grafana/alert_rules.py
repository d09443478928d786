"""Grafana-managed alert rules, generated from the Prometheus rule files (the single source of
expressions, `for:`, severities and annotations), in Grafana's file-provisioning format.

Each rule is three queries: A, the Prometheus rule's own expression (its comparison included,
so every series it returns is an alert instance, as in Prometheus); B, A reduced to its last
value; C, the condition, true for every series B holds. No series means OK (`noDataState`),
an evaluation error shows as Error. Annotations keep the Prometheus templates, with
`$value` read from B (`$values.B.Value`), which Grafana's template language provides.

Grafana's alerts go where Prometheus' go: one contact point, the Alertmanager of the
monitoring component (`${ALERTMANAGER_URL}`, set in Grafana's environment), which routes
and delivers both; the notification policy groups them per StockStream like alertmanager.yml.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import alerting, prometheus
from grafana_foundation_sdk.builders import expr as sse
from grafana_foundation_sdk.models import alerting as am
from grafana_foundation_sdk.models import dashboard as dbm

from stockstream.monitoring.grafana.dashboard import PROMETHEUS_UID, to_json

PROMETHEUS_REF = dbm.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)

FOLDER = "Stockstream"
EXPRESSION_UID = "__expr__"  # Grafana's server-side expressions
INTERVAL = "1m"
LOOKBACK_S = 600
CONDITION = "is_number($B) || is_nan($B) || is_inf($B)"
CONTACT_POINT = "stockstream-alertmanager"
ALERTMANAGER_INTEGRATION = "prometheus-alertmanager"
GROUP_BY = ["grafana_folder", "alertname", "namespace", "stockstream"]


def uid(alert: str) -> str:
    """A Grafana uid (at most 40 characters) from an alert name."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", alert).lower()[:40]


def grafana_template(text: str) -> str:
    """A Prometheus annotation template for Grafana: `$value` is B's value there."""
    return re.sub(r"\$value\b", "$values.B.Value", text)


def rule(prom: dict[str, Any]) -> alerting.Rule:
    """The Grafana rule of one Prometheus alerting rule."""
    expr = " ".join(str(prom["expr"]).split())
    lookback = am.RelativeTimeRange(from_val=LOOKBACK_S, to=0)
    return (
        alerting.Rule(prom["alert"])
        .uid(uid(prom["alert"]))
        .condition("C")
        .with_query(
            alerting.Query("A")
            .datasource_uid(PROMETHEUS_UID)
            .relative_time_range(lookback)
            .model(
                prometheus.Dataquery().expr(expr).instant().ref_id("A").datasource(PROMETHEUS_REF)
            )
        )
        .with_query(
            alerting.Query("B")
            .datasource_uid(EXPRESSION_UID)
            .model(sse.TypeReduce().ref_id("B").expression("A").reducer("last"))
        )
        .with_query(
            alerting.Query("C")
            .datasource_uid(EXPRESSION_UID)
            .model(sse.TypeMath().ref_id("C").expression(CONDITION))
        )
        .for_val(prom.get("for", "0s"))
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels(dict(prom.get("labels", {})))
        .annotations(
            {k: grafana_template(str(v)).strip() for k, v in prom.get("annotations", {}).items()}
        )
        .is_paused(False)
    )


def _provisioned(built: dict[str, Any]) -> dict[str, Any]:
    """A rule as the provisioning file takes it (its group and folder are the group's)."""
    out = {k: v for k, v in built.items() if k not in ("folderUID", "ruleGroup", "orgID")}
    for query in out["data"]:
        if query["datasourceUid"] == EXPRESSION_UID:
            query["model"]["datasource"] = {"type": EXPRESSION_UID, "uid": EXPRESSION_UID}
            query["relativeTimeRange"] = {"from": 0, "to": 0}
    return out


def contact_point() -> dict[str, Any]:
    """The Alertmanager of the monitoring component, as a provisioned contact point."""
    receiver = to_json(
        alerting.ContactPoint()
        .uid(CONTACT_POINT)
        .name(CONTACT_POINT)
        .type("alertmanager")
        .settings({"url": "${ALERTMANAGER_URL}"})
        .disable_resolve_message(False)
        .build()
    )
    receiver.pop("name", None)
    # The SDK's type list comes from Grafana's OpenAPI document, which calls this integration
    # "alertmanager"; Grafana registers it as "prometheus-alertmanager", the name its
    # provisioning files take.
    receiver["type"] = ALERTMANAGER_INTEGRATION
    return {"orgId": 1, "name": CONTACT_POINT, "receivers": [receiver]}


def notification_policy() -> dict[str, Any]:
    """Every Grafana-managed alert to that contact point, grouped per StockStream."""
    policy = to_json(
        alerting.NotificationPolicy().receiver(CONTACT_POINT).group_by(GROUP_BY).build()
    )
    return {"orgId": 1, **policy}


def build(rule_files: list[Path]) -> dict[str, Any]:
    """The provisioning document of every alerting rule of `rule_files`, with the contact
    point and notification policy they are delivered through."""
    groups = []
    for path in rule_files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules = [to_json(rule(r).build()) for r in group["rules"] if "alert" in r]
            groups.append(
                {
                    "orgId": 1,
                    "name": group["name"],
                    "folder": FOLDER,
                    "interval": INTERVAL,
                    "rules": [_provisioned(r) for r in rules],
                }
            )
    return {
        "apiVersion": 1,
        "groups": groups,
        "contactPoints": [contact_point()],
        "policies": [notification_policy()],
    }
