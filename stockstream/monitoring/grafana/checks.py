"""Structural checks of the Grafana files, beyond what the typed builder guarantees (it builds
a rule without queries or a panel without a data source just fine). Each returns a list of
problems; empty means fine."""

from __future__ import annotations

import re
from typing import Any

EXPRESSION_UID = "__expr__"
_PANEL_KINDS = {"row", "stat", "timeseries", "alertlist"}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def check_dashboard(  # noqa: PLR0912 - a flat list of independent checks reads best
    dashboard: dict[str, Any], datasource_uids: set[str]
) -> list[str]:
    """Panels: known type, grid inside 24 columns, unique ids, every query panel reading the
    dashboard's data source variable (whose default is a provisioned data source) with a
    non-empty expr and a unique refId per target."""
    problems = []
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    ds_vars = [v for v in variables.values() if v.get("type") == "datasource"]
    if len(ds_vars) != 1:
        return [f"expected one datasource variable, found {len(ds_vars)}"]
    ds_var = ds_vars[0]
    if ds_var.get("current", {}).get("value") not in datasource_uids:
        problems.append(f"datasource variable default {ds_var.get('current')} not provisioned")
    ref = {"type": ds_var.get("query"), "uid": f"${{{ds_var['name']}}}"}
    ids = [p.get("id") for p in _panels(dashboard)]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"panel ids missing or duplicated: {ids}")
    for panel in _panels(dashboard):
        title = panel.get("title") or f"panel {panel.get('id')}"
        if panel.get("type") not in _PANEL_KINDS:
            problems.append(f"{title}: unknown panel type {panel.get('type')!r}")
        pos = panel.get("gridPos") or {}
        if not all(isinstance(pos.get(k), int) for k in "xywh") or pos["x"] + pos["w"] > 24:
            problems.append(f"{title}: bad gridPos {pos}")
        if panel.get("type") in ("row", "alertlist"):
            continue
        if panel.get("datasource") != ref:
            problems.append(f"{title}: datasource {panel.get('datasource')} is not {ref}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{title}: no queries")
        ref_ids = [t.get("refId") for t in targets]
        if len(set(ref_ids)) != len(ref_ids) or None in ref_ids:
            problems.append(f"{title}: refIds missing or duplicated: {ref_ids}")
        for target in targets:
            if not str(target.get("expr", "")).strip():
                problems.append(f"{title}: empty query {target.get('refId')}")
            if target.get("datasource") != ref:
                problems.append(f"{title}: target datasource {target.get('datasource')}")
    return problems


def check_alert_rules(  # noqa: PLR0912 - a flat list of independent checks reads best
    document: dict[str, Any], datasource_uids: set[str]
) -> list[str]:
    """Grafana alert rule provisioning: apiVersion 1; each rule with a unique uid (<= 40
    chars), a title, queries on provisioned data sources or expressions, a condition that
    is one of its refIds, expressions that only read refIds of the rule, a severity, a
    summary and a runbook URL."""
    problems = []
    if document.get("apiVersion") != 1:
        problems.append("apiVersion must be 1")
    uids: list[str] = []
    for group in document.get("groups", []):
        for key in ("name", "folder", "interval"):
            if not group.get(key):
                problems.append(f"group {group.get('name')}: no {key}")
        for rule in group.get("rules", []):
            title = rule.get("title") or "(untitled rule)"
            uid = rule.get("uid", "")
            uids.append(uid)
            if not uid or len(uid) > 40:
                problems.append(f"{title}: bad uid {uid!r}")
            data = rule.get("data") or []
            ref_ids = {q.get("refId") for q in data}
            if not data:
                problems.append(f"{title}: no queries")
            if rule.get("condition") not in ref_ids:
                problems.append(f"{title}: condition {rule.get('condition')!r} not in {ref_ids}")
            for query in data:
                uid_ = query.get("datasourceUid")
                model = query.get("model") or {}
                if model.get("refId") != query.get("refId"):
                    problems.append(f"{title}: model refId differs from {query.get('refId')}")
                if uid_ == EXPRESSION_UID:
                    text = str(model.get("expression", ""))
                    used = (
                        set(re.findall(r"\$(\w+)", text)) if model.get("type") == "math" else {text}
                    )
                    if not used or not used <= ref_ids - {query.get("refId")}:
                        problems.append(f"{title}: expression {text!r} reads unknown refIds")
                elif uid_ in datasource_uids:
                    if not str(model.get("expr", "")).strip():
                        problems.append(f"{title}: query {query.get('refId')} has no expr")
                else:
                    problems.append(f"{title}: datasource {uid_!r} is not provisioned")
            if not (rule.get("labels") or {}).get("severity"):
                problems.append(f"{title}: no severity label")
            annotations = rule.get("annotations") or {}
            for key in ("summary", "runbook_url"):
                if not annotations.get(key):
                    problems.append(f"{title}: no {key} annotation")
            if rule.get("noDataState") not in ("OK", "NoData", "Alerting"):
                problems.append(f"{title}: bad noDataState")
    if len(uids) != len(set(uids)):
        problems.append("duplicate rule uids")
    return problems
