"""The dashboard's "Operator" row: the reconcile passes, the lifecycle of each StockStream,
rollbacks and the leader (the metrics of services/operator/handlers.py and election.py).

The operator's per-StockStream series carry the StockStream's `namespace` and `stockstream`
(copied from `name` at scrape time, observability/prometheus/operator/), so `NS` selects them
like the pipeline's; the leader gauge describes the operator's pods and is not filtered.
Every panel has data on a healthy operated pipeline (the counters are exported at 0).
"""

from __future__ import annotations

from stockstream.monitoring.grafana.panels import NS, PanelSpec, Query, quantile_by, rate

OPERATOR_JOB = 'job="stockstream-operator"'
_SELECT = f"{{{NS}, {OPERATOR_JOB}}}"

# The current state of each StockStream (value 1, the state as a label) times the seconds
# since it entered it: the expression of the StockstreamLifecycleStuck alert, without its
# state filter and threshold.
LIFECYCLE_AGE = (
    f"(max by (namespace, stockstream, lifecycle) (stockstream_operator_lifecycle{_SELECT} "
    "== 1)) * on (namespace, stockstream) group_left () (time() - max by (namespace, "
    f"stockstream) (stockstream_operator_lifecycle_since_timestamp_seconds{_SELECT}))"
)

OPERATOR_ROW: tuple[str, tuple[PanelSpec, ...]] = (
    "Operator",
    (
        PanelSpec(
            "timeseries",
            "Reconcile passes by result",
            "Reconcile passes per second of the selected StockStreams (one every "
            "RECONCILE_INTERVAL_S, 10 s, per StockStream, and at once after a spec change): "
            "ok, or error (the operator logs `reconcile failed`; alert "
            "StockstreamReconcileErrors when more than half fail for 10 min).",
            (
                Query(
                    rate("stockstream_operator_reconciles_total", "result", OPERATOR_JOB),
                    "{{result}}",
                ),
            ),
        ),
        PanelSpec(
            "timeseries",
            "Reconcile pass duration p95",
            "95th percentile wall time of a reconcile pass per StockStream: API reads and "
            "writes, the broker's topic check and the leaderboards' freshness in Redis. "
            "Seconds mean a timeout (broker, Redis or API server).",
            (
                Query(
                    quantile_by(
                        "stockstream_operator_reconcile_duration_seconds",
                        "stockstream",
                        "0.95",
                        OPERATOR_JOB,
                    ),
                    "{{stockstream}}",
                ),
            ),
            unit="s",
        ),
        PanelSpec(
            "timeseries",
            "Lifecycle state and time in it",
            "Each StockStream's lifecycle state (the legend: a new line per state) and how "
            "long it has been in it. Deploying, Rescaling or Upgrading past 15 minutes: "
            "StockstreamLifecycleStuck; Failed for 5: StockstreamLifecycleFailed. "
            "Suspended never alerts.",
            (Query(LIFECYCLE_AGE, "{{stockstream}}: {{lifecycle}}"),),
            unit="s",
            width=24,
        ),
        PanelSpec(
            "timeseries",
            "Rollbacks (last hour)",
            "Automatic rollbacks to the last stable spec per StockStream in the trailing "
            "hour (alert StockstreamRolledBack for 15 minutes after each).",
            (
                Query(
                    f"sum by (stockstream) (increase(stockstream_operator_rollbacks_total"
                    f"{_SELECT}[1h]))",
                    "{{stockstream}}",
                ),
            ),
        ),
        PanelSpec(
            "timeseries",
            "Operator leader by replica",
            "1 on the operator replica holding the Lease (the one that reconciles), 0 on "
            "the standby; a handover moves the 1. No replica at 1 for 5 minutes: "
            "StockstreamOperatorNoLeader.",
            (Query(f"max by (pod) (stockstream_operator_leader{{{OPERATOR_JOB}}})", "{{pod}}"),),
        ),
    ),
)
