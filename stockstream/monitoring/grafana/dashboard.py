"""The "Stockstream / Leaderboard pipeline" dashboard, from a table of panels (`panels.py`;
the operator's row in `operator_row.py`).

Every query selects `namespace=~"$namespace", stockstream=~"$stockstream"` (the StockStream a
pod belongs to, kept by Prometheus from its app.kubernetes.io/instance label: two pipelines in
one namespace stay apart; pods of the plain manifests have none, which `.*` matches) and reads
the data source of the `datasource` variable (default: the provisioned Prometheus, uid
`prometheus`).
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dbm

from stockstream.monitoring.grafana.operator_row import OPERATOR_ROW
from stockstream.monitoring.grafana.panels import NS, PanelSpec, Query, quantile_by, rate

PROMETHEUS_UID = "prometheus"  # provisioning/datasources/datasources.yaml
PROMETHEUS_NAME = "Prometheus"
DS = dbm.DataSourceRef(type_val="prometheus", uid="${datasource}")


def ingest(metric: str, agg: str = "max by (pod)") -> str:
    return f'{agg} ({metric}{{{NS}, job="ingest"}})'


def latency(q: str) -> str:
    return quantile_by("stockstream_window_emit_latency_seconds", "", q)


DECODED = rate("stockstream_ticks_decoded_total")
REJECTED = rate("stockstream_ticks_rejected_total")
INGEST_JOB = 'job="ingest"'

ROWS: tuple[tuple[str, tuple[PanelSpec, ...]], ...] = (
    (
        "Overview",
        (
            PanelSpec(
                "stat",
                "Ticks decoded / s",
                "Valid ticks decoded by all dataflow processes.",
                (Query(DECODED, "Ticks decoded / s"),),
                width=6,
            ),
            PanelSpec(
                "stat",
                "Reject ratio",
                "Rejected / (decoded + rejected); alert above 5%.",
                (Query(f"{REJECTED} / ({DECODED} + {REJECTED})", "Reject ratio"),),
                unit="percentunit",
                width=6,
            ),
            PanelSpec(
                "stat",
                "Window emit latency p99",
                "Watermark passing a window's end to the window in Redis; alert above 2 s.",
                (Query(latency("0.99"), "Window emit latency p99"),),
                unit="s",
                width=6,
            ),
            PanelSpec(
                "stat",
                "Redis errors / s",
                "Failed (retried) leaderboard writes.",
                (Query(rate("stockstream_redis_errors_total"), "Redis errors / s"),),
                width=6,
            ),
        ),
    ),
    (
        "Ingestion",
        (
            PanelSpec(
                "timeseries",
                "Tick rate",
                "Ticks published by the replay producer and the ingest pods, decoded and "
                "rejected by the dataflow.",
                (
                    Query(rate("stockstream_replay_ticks_published_total"), "published (replay)"),
                    Query(
                        rate("stockstream_ingest_ticks_published_total", extra=INGEST_JOB),
                        "published (ingest)",
                    ),
                    Query(DECODED, "decoded"),
                    Query(REJECTED, "rejected"),
                ),
            ),
            PanelSpec(
                "timeseries",
                "Rejects by reason",
                "Messages sent to the dead-letter topic, by reason (late, invalid_json, "
                "missing_field, ...).",
                (Query(rate("stockstream_ticks_rejected_total", by="reason"), "{{reason}}"),),
            ),
            PanelSpec(
                "timeseries",
                "Dead-letter publishes",
                "Records written to the dead-letter topic; should follow the reject rate.",
                (
                    Query(rate("stockstream_dlq_published_total"), "dlq published"),
                    Query(REJECTED, "rejected"),
                ),
            ),
            PanelSpec(
                "timeseries",
                "Producer delivery errors",
                "Messages the broker did not acknowledge, by producer job.",
                (Query(rate("stockstream_producer_delivery_errors_total", by="job"), "{{job}}"),),
            ),
        ),
    ),
    (
        "Ingestion service",
        (
            PanelSpec(
                "timeseries",
                "Ingest ticks / s by provider",
                "Ticks the broker acknowledged (published) and ticks the providers handed to "
                "the buffer (received), by provider, over all ingest pods.",
                (
                    Query(
                        rate("stockstream_ingest_ticks_published_total", "provider", INGEST_JOB),
                        "{{provider}} published",
                    ),
                    Query(
                        rate("stockstream_ingest_ticks_received_total", "provider", INGEST_JOB),
                        "{{provider}} received",
                    ),
                ),
            ),
            PanelSpec(
                "timeseries",
                "Buffer depth",
                "Ticks not yet acknowledged per pod: waiting in the local outage buffer plus "
                "in flight in librdkafka (drops start at BUFFER_MAX_TICKS).",
                (Query(ingest("stockstream_ingest_buffer_depth"), "{{pod}}"),),
            ),
            PanelSpec(
                "timeseries",
                "Ticks lost",
                "Ticks dropped from the full outage buffer and ticks the broker finally "
                "rejected, per pod (alerts: StockstreamIngestBufferDropping, "
                "StockstreamProducerDeliveryErrors).",
                (
                    Query(
                        rate("stockstream_ingest_buffer_dropped_total", "pod", INGEST_JOB),
                        "{{pod}} dropped",
                    ),
                    Query(
                        rate("stockstream_ingest_delivery_errors_total", "pod", INGEST_JOB),
                        "{{pod}} delivery errors",
                    ),
                ),
            ),
            PanelSpec(
                "timeseries",
                "Provider errors by kind",
                "Unusable provider answers and failures, never published (alert above 0.05/s "
                "of one kind for 15 min).",
                (
                    Query(
                        rate(
                            "stockstream_ingest_provider_errors_total", "provider, kind", INGEST_JOB
                        ),
                        "{{provider}} {{kind}}",
                    ),
                ),
            ),
            PanelSpec(
                "timeseries",
                "Websocket disconnects (last 15 min)",
                "Streaming connections lost or failed in the trailing 15 minutes, by pod and "
                "reason (alert above 4 per pod).",
                (
                    Query(
                        f"sum by (pod, reason) (increase(stockstream_ingest_disconnects_total"
                        f'{{{NS}, job="ingest"}}[15m]))',
                        "{{pod}} {{reason}}",
                    ),
                ),
            ),
            PanelSpec(
                "timeseries",
                "Poll beats skipped",
                "Poll beats skipped per second by pod and reason: overrun (the previous round "
                "ran past them) or rate_limited (a 429's Retry-After).",
                (
                    Query(
                        rate("stockstream_ingest_poll_skipped_total", "pod, reason", INGEST_JOB),
                        "{{pod}} {{reason}}",
                    ),
                ),
            ),
            PanelSpec(
                "timeseries",
                "Market session open",
                "1 while the pod's exchange is in session (always 1 for 24/7), 0 while it idles.",
                (Query(ingest("stockstream_ingest_session_open"), "{{pod}}"),),
            ),
            PanelSpec(
                "timeseries",
                "Symbols per pod and shard count",
                "Symbols each pod owns and the shard count it believes in; every pod should "
                "report the StatefulSet's replicas (alert: StockstreamIngestShardCoverage).",
                (
                    Query(ingest("stockstream_ingest_shard_symbols"), "{{pod}} symbols"),
                    Query(ingest("stockstream_ingest_shard_count"), "{{pod}} shard count"),
                ),
            ),
        ),
    ),
    (
        "Windows",
        (
            PanelSpec(
                "timeseries",
                "Watermark lag by partition",
                "Wall clock minus each partition's watermark. Constant when healthy (large "
                "when replaying old data); a slope of 1 s/s means the watermark stopped.",
                (
                    Query(
                        f"max by (partition) (stockstream_watermark_lag_seconds{{{NS}}})",
                        "partition {{partition}}",
                    ),
                ),
                unit="s",
            ),
            PanelSpec(
                "timeseries",
                "Window emit latency p50 / p99",
                "Time from the watermark passing a window's end to the window being written "
                "to Redis.",
                (Query(latency("0.50"), "p50"), Query(latency("0.99"), "p99")),
                unit="s",
            ),
            PanelSpec(
                "timeseries",
                "Window phases p99",
                "Where a window's time goes: close (one partition closing an end), to_sink "
                "(from the last partition's close to the sink), redis_windows (the "
                "leaderboard scripts: then they are visible) and redis_figures_history "
                "(figures and history, after). Read beside the emit latency.",
                (
                    Query(
                        quantile_by("stockstream_window_phase_seconds", "phase", "0.99"),
                        "{{phase}}",
                    ),
                ),
                unit="s",
            ),
            PanelSpec(
                "timeseries",
                "GC pauses p99 by generation",
                "How long the dataflow's cyclic garbage collections stop the process; a "
                "pause lands on whatever window is closing.",
                (
                    Query(
                        quantile_by("stockstream_gc_pause_seconds", "generation", "0.99"),
                        "gen {{generation}}",
                    ),
                ),
                unit="s",
            ),
            PanelSpec(
                "timeseries",
                "Windows closed by window",
                "Per-partition windows closed by the watermark (1m, 5m, 15m, 5m_max).",
                (Query(rate("stockstream_windows_closed_total", by="window"), "{{window}}"),),
            ),
            PanelSpec(
                "timeseries",
                "Leaderboard writes by window",
                "Whole windows written to the Redis sorted sets.",
                (Query(rate("stockstream_leaderboard_writes_total", by="window"), "{{window}}"),),
            ),
        ),
    ),
    (
        "Redis sink",
        (
            PanelSpec(
                "timeseries",
                "Redis errors",
                "Failed Redis writes (each is retried); alert when sustained for 5 minutes.",
                (Query(rate("stockstream_redis_errors_total", by="pod"), "{{pod}}"),),
                width=24,
            ),
        ),
    ),
    OPERATOR_ROW,
)


def _targets(spec: PanelSpec) -> list[prometheus.Dataquery]:
    return [
        prometheus.Dataquery()
        .expr(q.expr)
        .legend_format(q.legend)
        .ref_id(chr(65 + i))
        .datasource(DS)
        for i, q in enumerate(spec.queries)
    ]


def _panel(spec: PanelSpec, panel_id: int, x: int, y: int) -> Any:
    height = 4 if spec.kind == "stat" else 8
    builder: Any
    if spec.kind == "stat":
        builder = (
            stat.Panel()
            .color_mode(cm.BigValueColorMode.BACKGROUND)
            .graph_mode(cm.BigValueGraphMode.AREA)
            .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        )
    else:
        builder = (
            timeseries.Panel()
            .legend(
                cb.VizLegendOptions()
                .show_legend(True)
                .display_mode(cm.LegendDisplayMode.LIST)
                .placement(cm.LegendPlacement.BOTTOM)
            )
            .tooltip(
                cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.NONE)
            )
        )
    builder = (
        builder.id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .datasource(DS)
        .unit(spec.unit)
        .grid_pos(dbm.GridPos(h=height, w=spec.width, x=x, y=y))
    )
    for target in _targets(spec):
        builder = builder.with_target(target)
    return builder


def _alert_list(panel_id: int, y: int, title: str, datasource: str, description: str) -> Any:
    """An alert list panel (no typed builder for it in the SDK: a generic panel)."""
    return (
        db.Panel()
        .id(panel_id)
        .type("alertlist")
        .title(title)
        .description(description)
        .grid_pos(dbm.GridPos(h=6, w=12, x=0 if datasource != "grafana" else 12, y=y))
        .options(
            {
                "viewMode": "list",
                "groupMode": "default",
                "groupBy": [],
                "maxItems": 20,
                "sortOrder": 1,
                "dashboardAlerts": False,
                "alertName": "Stockstream",
                "alertInstanceLabelFilter": "",
                **({} if datasource == "grafana" else {"datasource": datasource}),
                "stateFilter": {
                    "firing": True,
                    "pending": True,
                    "noData": False,
                    "normal": False,
                    "error": True,
                },
            }
        )
    )


def build() -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    board: Any = (
        db.Dashboard("Stockstream / Leaderboard pipeline")
        .uid("stockstream-pipeline")
        .description(
            "Ticks in, windows out: ingestion rate, the ingest service (buffer, "
            "provider errors, disconnects, sessions, shards), rejects, watermarks, "
            "window emission, the Redis sink, and the operator (reconcile passes, "
            "lifecycle states, rollbacks, leader)."
        )
        .tags(["stockstream", "bytewax", "kafka", "redis", "operator"])
        .timezone("utc")
        .editable()
        .tooltip(dbm.DashboardCursorSync.CROSSHAIR)
        .refresh("10s")
        .time("now-30m", "now")
        .with_variable(
            db.DatasourceVariable("datasource")
            .label("Prometheus")
            .type("prometheus")
            .current(dbm.VariableOption(selected=True, text=PROMETHEUS_NAME, value=PROMETHEUS_UID))
        )
        .with_variable(
            db.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DS)
            .query("label_values(stockstream_ticks_decoded_total, namespace)")
            .include_all(True)
            .all_value(".*")
            .refresh(dbm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dbm.VariableSort.ALPHABETICAL_ASC)
            .current(dbm.VariableOption(selected=True, text="All", value="$__all"))
        )
        .with_variable(
            db.QueryVariable("stockstream")
            .label("StockStream")
            .datasource(DS)
            .query(
                "label_values(stockstream_ticks_decoded_total"
                '{namespace=~"$namespace"}, stockstream)'
            )
            .include_all(True)
            .all_value(".*")
            .refresh(dbm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dbm.VariableSort.ALPHABETICAL_ASC)
            .current(dbm.VariableOption(selected=True, text="All", value="$__all"))
        )
    )
    panel_id, y = 1, 0
    for index, (row_title, specs) in enumerate(ROWS):
        board = board.with_row(
            db.Row(row_title).id(panel_id).grid_pos(dbm.GridPos(h=1, w=24, x=0, y=y))
        )
        panel_id, y, x = panel_id + 1, y + 1, 0
        for spec in specs:
            if x + spec.width > 24:
                x, y = 0, y + (4 if spec.kind == "stat" else 8)
            board = board.with_panel(_panel(spec, panel_id, x, y))
            panel_id, x = panel_id + 1, x + spec.width
        y += 4 if specs[-1].kind == "stat" else 8
        if index == 0:
            board = board.with_panel(
                _alert_list(
                    panel_id,
                    y,
                    "Stockstream alerts (Prometheus rules)",
                    PROMETHEUS_NAME,
                    "Firing and pending alerts of the Prometheus rules in "
                    "observability/prometheus/rules, read from the Prometheus data source "
                    "(data-source-managed alerts). Each alert links its runbook.",
                )
            )
            board = board.with_panel(
                _alert_list(
                    panel_id + 1,
                    y,
                    "Stockstream alerts (Grafana-managed)",
                    "grafana",
                    "Firing and pending Grafana-managed alert rules "
                    "(provisioning/alerting/stockstream-alerts.json, generated from the same "
                    "Prometheus rule files).",
                )
            )
            panel_id, y = panel_id + 2, y + 6
    return to_json(board.build())


def to_json(model: Any) -> dict[str, Any]:
    """A built SDK model as plain JSON data."""
    data: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return data
