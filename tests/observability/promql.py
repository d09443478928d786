"""Helpers shared by the observability tests: the metric names the code exports and a small
PromQL scanner that finds which metric names an expression selects."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "observability"

# The metrics the services export (stockstream/metrics.py), as Prometheus exposes them.
COUNTERS = {
    "stockstream_ticks_decoded_total",
    "stockstream_ticks_rejected_total",
    "stockstream_dlq_published_total",
    "stockstream_windows_closed_total",
    "stockstream_leaderboard_writes_total",
    "stockstream_redis_errors_total",
    "stockstream_replay_ticks_published_total",
    "stockstream_producer_delivery_errors_total",
    "stockstream_ingest_ticks_received_total",
    "stockstream_ingest_ticks_published_total",
    "stockstream_ingest_delivery_errors_total",
    "stockstream_ingest_buffer_dropped_total",
    "stockstream_ingest_provider_errors_total",
    "stockstream_ingest_poll_skipped_total",
    "stockstream_ingest_disconnects_total",
    "stockstream_ingest_reshards_total",
    "stockstream_kafka_consumer_errors_total",
    "stockstream_operator_reconciles_total",
    "stockstream_operator_rollbacks_total",
}
GAUGES = {
    "stockstream_watermark_lag_seconds",
    "stockstream_ingest_buffer_depth",
    "stockstream_ingest_session_open",
    "stockstream_ingest_shard_count",
    "stockstream_ingest_shard_index",
    "stockstream_ingest_shard_symbols",
    "stockstream_operator_lifecycle",
    "stockstream_operator_lifecycle_since_timestamp_seconds",
    "stockstream_operator_leader",
    "stockstream_dataflow_ready",
    "stockstream_dataflow_progress_age_seconds",
}
HISTOGRAMS = {
    "stockstream_window_emit_latency_seconds",
    "stockstream_ingest_poll_duration_seconds",
    "stockstream_window_phase_seconds",
    "stockstream_gc_pause_seconds",
    "stockstream_operator_reconcile_duration_seconds",
}
KNOWN_METRICS = frozenset(
    COUNTERS
    | GAUGES
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)
# Series of Prometheus itself (scrape health; its own service discovery, scraped by its
# `prometheus` job); alert rules may use them, dashboards do not.
SYNTHETIC_METRICS = frozenset({"up", "prometheus_sd_discovered_targets"})

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENT = re.compile(r"(?<![\w:$.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Metric names selected by a PromQL expression (functions, keywords, label names and
    Grafana variables are not metric names)."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _BRACKETS.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _IDENT.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def duration_s(text: str) -> int:
    """Seconds of a Prometheus duration such as `90s`, `5m`, `1h30m`."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return int(sum(int(n) * units[u] for n, u in parts))


def format_duration(seconds: int) -> str:
    """`seconds` as a Prometheus duration (`90` -> `1m30s`)."""
    out = ""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"


_SELECTOR = re.compile(r"(?<![\w:$.])([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^{}]*\})?")


def selectors(expr: str) -> set[str]:
    """The vector selectors of an expression (`metric{matchers}`), each a query of its own."""
    text = _GROUPING.sub(" ", expr)
    found = set()
    for match in _SELECTOR.finditer(text):
        name, matchers = match.group(1), match.group(2) or ""
        if name in KNOWN_METRICS | SYNTHETIC_METRICS:
            found.add(f"{name}{matchers}")
    return found


# Grafana variables, substituted for the live check as Grafana would with a 1 s scrape
# interval stretched for a loaded machine.
LIVE_GRAFANA_VARS = {
    "$__rate_interval": "10s",
    "$__interval": "5s",
    "$__range": "1h",
    "$namespace": ".*",
    "$stockstream": ".*",
}


def substitute(expr: str, variables: dict[str, str]) -> str:
    for var, value in variables.items():
        expr = expr.replace(var, value)
    return expr


def dashboard_queries() -> dict[str, str]:
    """expr -> where (dashboard / panel) of every panel target."""
    out = {}
    for path in sorted((OBSERVABILITY / "grafana/dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        stack = list(dashboard["panels"])
        while stack:
            panel = stack.pop()
            stack.extend(panel.get("panels", []))
            for target in panel.get("targets", []):
                out[target["expr"]] = f"{path.name}: {panel['title']}"
    return out


def grafana_rule_queries() -> dict[str, str]:
    """expr -> rule title of every Prometheus query of the Grafana-managed alert rules."""
    out = {}
    for path in sorted((OBSERVABILITY / "grafana/provisioning/alerting").glob("*.json")):
        for group in json.loads(path.read_text())["groups"]:
            for rule in group["rules"]:
                for query in rule["data"]:
                    expr = query["model"].get("expr")
                    if expr:
                        out[expr] = f"{path.name}: {rule['title']}"
    return out
