"""The alert tier: a real pipeline scraped by a real Prometheus loading the project's rule
files (time-scaled by `stockstream.monitoring.timescale`, factor 30), routed by a real
Alertmanager with the project's route to a webhook receiver of ours. Each fault is caused,
its alerts must arrive with severity, summary and runbook, and resolve after the repair.

The tests share one pipeline and run in file order. Every dashboard panel query, every
selector of every Prometheus rule and every Grafana-managed rule query is evaluated on the
live Prometheus in each phase; `test_every_query_returned_series` checks them at the end.
Run: ./scripts/test.sh tests/observability/alerting -q
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import yaml

from stockstream.monitoring.timescale import duration_ms, rule_files, scale_rules
from tests.alerting_support import (
    PARTITIONS,
    SCRAPE_INTERVAL_S,
    STALL_PARTITION,
    TIME_SCALE,
    MonitoredPipeline,
    file_symbols,
    partition_of,
    running_pipeline,
)
from tests.observability.promql import (
    LIVE_GRAFANA_VARS,
    REPO,
    dashboard_queries,
    grafana_rule_queries,
    selectors,
    substitute,
)

# Beyond an alert's scaled `for:` plus its longest range: scrapes, rule evaluation, the
# Alertmanager group wait and the webhook, on a loaded machine.
ARRIVAL_BOUND_S = 60.0
RESOLVE_BOUND_S = 90.0


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    for_s: float
    range_s: float
    expr: str


def scaled_rules() -> dict[str, Rule]:
    out = {}
    for path in rule_files():
        scaled = scale_rules(yaml.safe_load(path.read_text()), TIME_SCALE, SCRAPE_INTERVAL_S)
        for group in scaled["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                ranges = [duration_ms(r) for r in _ranges(rule["expr"])] or [0]
                out[rule["alert"]] = Rule(
                    rule["alert"],
                    rule["labels"]["severity"],
                    duration_ms(rule.get("for", "0s")) / 1000,
                    max(ranges) / 1000,
                    rule["expr"],
                )
    return out


def _ranges(expr: str) -> list[str]:
    return re.findall(r"\[(\w+)(?::\w*)?\]", expr)


RULES = scaled_rules()
STARTED_S = time.monotonic()


def rule_selectors() -> dict[str, str]:
    out: dict[str, str] = {}
    for rule in RULES.values():
        for selector in selectors(rule.expr):
            out.setdefault(selector, f"rule {rule.name}")
    return out


@dataclass
class QueryLedger:
    """Which queries returned series on the live Prometheus, in which phase. Dashboard panels
    must return series on the healthy pipeline; a selector of a rule (Prometheus or Grafana)
    in some phase (a fault's metric during that fault). Grafana rule expressions are the
    Prometheus ones (fired in the faults) and must evaluate without error."""

    panels: dict[str, str] = field(default_factory=dict)  # live expr -> where
    selectors: dict[str, str] = field(default_factory=dict)  # count(selector) -> where
    rule_exprs: dict[str, str] = field(default_factory=dict)  # expr -> where
    seen: dict[str, str] = field(default_factory=dict)  # live expr -> first phase
    errors: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for expr, where in dashboard_queries().items():
            self.panels[substitute(expr, LIVE_GRAFANA_VARS)] = where
        for expr, where in grafana_rule_queries().items():
            self.rule_exprs[expr] = where
            for selector in selectors(expr):
                self.selectors.setdefault(f"count({selector})", where)
        for selector, where in rule_selectors().items():
            self.selectors.setdefault(f"count({selector})", where)

    def observe(self, pipeline: MonitoredPipeline, phase: str) -> None:
        assert pipeline.prometheus is not None
        for expr in [*self.panels, *self.selectors, *self.rule_exprs]:
            if expr in self.seen:
                continue
            try:
                if pipeline.prometheus.query(expr):
                    self.seen[expr] = phase
            except ValueError as exc:
                self.errors[expr] = str(exc)


LEDGER = QueryLedger()

# Metrics no fault of this tier produces, with why; their panels show no data until then and
# their rules keep their promtool tests.
NOT_PRODUCIBLE = {
    "stockstream_ingest_provider_errors_total": "only the Finnhub providers report errors "
    "(they need the live API); the replay provider has none",
    "stockstream_ingest_disconnects_total": "only the Finnhub websocket provider disconnects",
    "stockstream_operator_lifecycle": "only the operator exports it (and its _since_ "
    "timestamp), and it runs on Kubernetes: tests/userpath scrapes it and suspends a "
    "StockStream there",
    "stockstream_operator_reconciles_total": "the operator's passes: only on Kubernetes, "
    "where tests/userpath sees every panel of the Operator row with data",
    "stockstream_operator_reconcile_duration_seconds": "the operator's passes: only on Kubernetes",
    "stockstream_operator_rollbacks_total": "only the operator exports it (at 0, per "
    "StockStream), on Kubernetes",
    "stockstream_operator_leader": 'selected on job="stockstream-operator", which only '
    "the cluster's Prometheus scrapes (every process here exports it at 0)",
    "prometheus_sd_discovered_targets": "the operator alert reads it for the operator's scrape "
    "job, which only the cluster's Prometheus has",
    "stockstream_kafka_consumer_errors_total": "no fault of this tier stops the broker: "
    "tests/userpath stops it on the cluster and sees StockstreamBrokerUnreachable delivered "
    "and resolved",
    "stockstream_ingest_poll_skipped_total": "only polling providers (Finnhub quotes, the "
    "simulator) skip beats",
}


def _producible(expr: str) -> bool:
    return not any(metric in expr for metric in NOT_PRODUCIBLE)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitoredPipeline]:
    yield from running_pipeline(tmp_path_factory.mktemp("alerting"))


Alerts = list[tuple[str, dict[str, str]]]  # (alert name, labels the instance carries)


def expect(pipeline: MonitoredPipeline, since_s: float, alerts: Alerts) -> None:
    """Each alert (with these labels) arrives firing within its scaled `for:` plus range plus
    ARRIVAL_BOUND_S, with its severity, summary and an existing runbook."""
    assert pipeline.webhook is not None
    for name, labels in alerts:
        rule = RULES[name]
        timeout_s = rule.for_s + rule.range_s + ARRIVAL_BOUND_S - (time.monotonic() - since_s)
        got = pipeline.webhook.wait_for(name, "firing", since_s, max(timeout_s, 1.0), labels)
        assert got is not None, (
            f"{name} {labels} did not arrive within {rule.for_s:g}s for + {rule.range_s:g}s "
            f"range + {ARRIVAL_BOUND_S:g}s; received: "
            f"{[(a.labels.get('alertname'), a.status) for a in pipeline.webhook.alerts]}\n"
            + pipeline.diagnostics()
        )
        print(
            f"{name} {labels} fired after {got.received_s - since_s:.1f}s "
            f"(for {rule.for_s:g}s, range {rule.range_s:g}s)"
        )
        assert got.labels["severity"] == rule.severity
        summary = got.annotations.get("summary", "")
        assert summary and "{{" not in summary and "<no value>" not in summary, summary
        url = got.annotations.get("runbook_url", "")
        runbook = REPO / "observability/runbooks" / url.rsplit("/", 1)[-1]
        assert url.endswith(f"/observability/runbooks/{name}.md") and runbook.is_file(), url


def expect_resolved(pipeline: MonitoredPipeline, since_s: float, alerts: Alerts) -> None:
    assert pipeline.webhook is not None
    for name, labels in alerts:
        rule = RULES[name]
        timeout_s = rule.range_s + RESOLVE_BOUND_S - (time.monotonic() - since_s)
        got = pipeline.webhook.wait_for(name, "resolved", since_s, max(timeout_s, 1.0), labels)
        assert got is not None, (
            f"{name} {labels} did not resolve within "
            f"{rule.range_s + RESOLVE_BOUND_S:g}s of the repair\n" + pipeline.diagnostics()
        )
        print(f"{name} {labels} resolved {got.received_s - since_s:.1f}s after the repair")


def test_healthy_pipeline_is_scraped_and_rules_evaluate(pipeline: MonitoredPipeline) -> None:
    assert pipeline.prometheus is not None
    print(f"pipeline up after {time.monotonic() - STARTED_S:.0f}s")
    pipeline.wait_value(
        "sum(rate(stockstream_leaderboard_writes_total[10s])) > 0", 180, "leaderboards written"
    )
    pipeline.wait_value('min(up{job=~"dataflow|replay|ingest"}) == 1', 60, "targets up")
    # The dashboard's ingest panels are rates over 10 s: they need two scrapes of the ingest
    # pods inside that range, which a loaded machine may not have made yet (seen once in CI).
    pipeline.wait_value(
        'sum(rate(stockstream_ingest_ticks_published_total{job="ingest"}[10s])) > 0',
        60,
        "ingest rates",
    )
    loaded = {rule["name"]: rule for rule in pipeline.prometheus.rules()}
    assert loaded.keys() == RULES.keys()
    broken = {
        name: rule.get("lastError") for name, rule in loaded.items() if rule.get("health") == "err"
    }
    assert not broken, broken
    LEDGER.observe(pipeline, "healthy")


def test_bad_ticks_and_a_stalled_partition(pipeline: MonitoredPipeline) -> None:
    """Unparseable messages into partitions 0 and 1 (about 25% of the input) while the broker
    refuses dead letters, and partition 2's feed replaced by ticks whose clock froze: rejects
    that are not dead-lettered, a stalled watermark, and no leaderboard (the ranking waits
    for every partition) although windows close."""
    assert pipeline.ingest is not None
    frozen_symbol = next(s for s in file_symbols() if partition_of(s) == STALL_PARTITION)
    pipeline.wait_quiet()
    since = time.monotonic()
    pipeline.refuse_dead_letters(True)
    bad = pipeline.bad_ticks(per_s=30)
    pipeline.ingest.stop()
    frozen = pipeline.frozen_clock(frozen_symbol)
    alerts: Alerts = [
        ("StockstreamTickRejectRatioHigh", {}),
        ("StockstreamWatermarkStalled", {"partition": str(STALL_PARTITION)}),
        ("StockstreamLeaderboardNotUpdated", {}),
        ("StockstreamProducerTargetDown", {"job": "ingest"}),
        ("StockstreamDeadLetterNotPublished", {}),
        ("StockstreamProducerDeliveryErrors", {"job": "dataflow"}),
    ]
    try:
        expect(pipeline, since, alerts)
        LEDGER.observe(pipeline, "bad ticks, stalled partition")
    finally:
        bad.stop()
        frozen.stop()
        pipeline.refuse_dead_letters(False)
        repaired = time.monotonic()
        pipeline.restart_feeds(pipeline.ingest)
    expect_resolved(pipeline, repaired, alerts)


def test_redis_slow_then_down(pipeline: MonitoredPipeline) -> None:
    """Redis holds writes for 5 s at a time (CLIENT PAUSE WRITE): windows reach it late. Then
    it is stopped: writes fail and are retried."""
    assert pipeline.redis is not None
    since = time.monotonic()
    pipeline.wait_quiet()
    slow = pipeline.slow_redis(pause_ms=5000)
    late: Alerts = [("StockstreamWindowEmitLatencyHigh", {})]
    try:
        expect(pipeline, since, late)
        LEDGER.observe(pipeline, "redis slow")
    finally:
        slow.set()
        repaired = time.monotonic()
    expect_resolved(pipeline, repaired, late)

    pipeline.wait_quiet()
    since = time.monotonic()
    pipeline.redis.stop()
    alerts: Alerts = [("StockstreamRedisWriteErrors", {})]
    try:
        expect(pipeline, since, alerts)
        LEDGER.observe(pipeline, "redis down")
    finally:
        repaired = time.monotonic()
        pipeline.redis.start()
    expect_resolved(pipeline, repaired, alerts)


def test_feed_stopped_then_every_clock_frozen(pipeline: MonitoredPipeline) -> None:
    """The feed stops: no ticks. Then every partition gets ticks whose clock froze: ticks are
    decoded again but no window closes anywhere."""
    assert pipeline.replay is not None and pipeline.ingest is not None
    pipeline.wait_quiet()
    since = time.monotonic()
    pipeline.replay.stop()
    pipeline.ingest.stop()
    stopped: Alerts = [
        ("StockstreamNoTicksIngested", {}),
        ("StockstreamProducerTargetDown", {"job": "replay"}),
    ]
    stalled: Alerts = [
        ("StockstreamWatermarkStalled", {"partition": str(p)}) for p in range(PARTITIONS)
    ]
    frozen = []
    try:
        expect(pipeline, since, stopped)
        LEDGER.observe(pipeline, "feed stopped")
        since = time.monotonic()
        symbols = file_symbols()
        for partition in range(PARTITIONS):
            symbol = next(s for s in symbols if partition_of(s) == partition)
            frozen.append(pipeline.frozen_clock(symbol))
        expect_resolved(pipeline, since, stopped[:1])
        expect(pipeline, since, [("StockstreamNoWindowsClosing", {}), *stalled])
        LEDGER.observe(pipeline, "every clock frozen")
    finally:
        for producer in frozen:
            producer.stop()
        repaired = time.monotonic()
        pipeline.restart_feeds(pipeline.replay, pipeline.ingest)
    expect_resolved(pipeline, repaired, [stopped[1], ("StockstreamNoWindowsClosing", {}), *stalled])


def test_dataflow_process_killed_then_unscraped(pipeline: MonitoredPipeline) -> None:
    """A dataflow process is killed (the cluster is restarted to repair it); then Prometheus
    loses every dataflow target (as when discovery finds no pod)."""
    assert pipeline.cluster is not None and pipeline.prometheus is not None
    pipeline.wait_quiet()
    since = time.monotonic()
    pipeline.cluster.kill(1)
    down: Alerts = [("StockstreamDataflowProcessDown", {"pod": "dataflow-1"})]
    try:
        expect(pipeline, since, down)
        LEDGER.observe(pipeline, "dataflow process killed")
    finally:
        pipeline.cluster.stop()
        repaired = time.monotonic()
        pipeline.start_dataflow()
    expect_resolved(pipeline, repaired, down)

    since = time.monotonic()
    absent: Alerts = [("StockstreamDataflowAbsent", {})]
    # The job stays, its targets go: Prometheus marks their series stale at once. (Removing
    # the whole job leaves them visible for the 5 minute lookback: absent() stays false.)
    pipeline.prometheus.reload({**pipeline.targets(), "dataflow": []})
    try:
        expect(pipeline, since, absent)
    finally:
        repaired = time.monotonic()
        pipeline.prometheus.reload(pipeline.targets())
    expect_resolved(pipeline, repaired, absent)


def test_every_query_returned_series() -> None:
    """Every dashboard panel returned series on the healthy pipeline, and every selector of
    every rule in some phase, unless it reads a metric of NOT_PRODUCIBLE; no query failed."""
    for expr in sorted({**LEDGER.panels, **LEDGER.selectors}):
        where = LEDGER.panels.get(expr) or LEDGER.selectors[expr]
        print(f"{LEDGER.seen.get(expr, 'NEVER'):30} {where}: {expr}")
    assert not LEDGER.errors, LEDGER.errors
    no_data = {
        expr: where
        for expr, where in LEDGER.panels.items()
        if LEDGER.seen.get(expr) != "healthy" and _producible(expr)
    }
    assert not no_data, "panels without data on the healthy pipeline:\n" + "\n".join(
        f"  {where}: {expr}" for expr, where in sorted(no_data.items(), key=lambda i: i[1])
    )
    missing = {
        expr: where
        for expr, where in LEDGER.selectors.items()
        if expr not in LEDGER.seen and _producible(expr)
    }
    assert not missing, "rule selectors that never matched a series:\n" + "\n".join(
        f"  {where}: {expr}" for expr, where in sorted(missing.items(), key=lambda i: i[1])
    )
