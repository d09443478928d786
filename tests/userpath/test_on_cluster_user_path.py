"""Issue 23: the user's whole path, as one, on the real cluster.

What a user runs is `skaffold dev` (the default profile: deploy/kustomize/operator/dev) and
the README's first console block. Here the same deploy runs as `skaffold run -p
local-cluster,local-images`: the default manifests with only the images swapped for ones
built on this machine (Apache Kafka KRaft in the `redpanda` StatefulSet, Debian's Redis and
Alertmanager, Prometheus built from Go modules, no Grafana: deploy/kustomize/operator/
dev-local-images); everything else, the example StockStream included, is what users get.

One test, in the order a user meets things:
1. Deploy: on a cluster without the CRD, skaffold installs it, waits until it is established,
   then applies the operator, the broker, Redis, Prometheus, Alertmanager, the alert receiver
   and the example StockStream; an edit of an immutable field is refused with the CEL message
   and the StockStream is not recreated.
2. Leaders: the README's `redis-cli` lines, run verbatim against the forwarded Redis, print
   the oracle's top 3 of the window they name.
3. Metrics: every annotated pod (dataflow processes, replay) and the operator are `up`
   targets, labelled with their StockStream; every dashboard panel of a component that runs
   here returns data and every Grafana rule query evaluates.
4. Alerts delivered: the broker stopped fires StockstreamBrokerUnreachable, which Alertmanager
   delivers to the in-cluster receiver, and resolves once the broker is back; suspending the
   StockStream fires nothing critical.
5. Logs searched: Filebeat (a DaemonSet) ships the ECS lines of the dataflow, replay, alert
   receiver and operator pods into the in-cluster OpenSearch, where they are found by
   `service.name` and by the StockStream's name (`app.kubernetes.io/instance`); the index
   template is installed, the retention CronJob deletes an expired daily index and nothing
   else, and Grafana's log data source is the address Filebeat ships to.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dataflows.leaders.specs import DEFAULT_SPECS
from services.replay.producer import replay_ticks
from services.replay.settings import ReplaySettings
from tests.cluster_support import KubeCluster
from tests.dataflows.leaders.compare import assert_same_leaders
from tests.dataflows.leaders.oracle import oracle_windows
from tests.dataflows.leaders.pipeline import SSE_FILE
from tests.deploy_operator_support import (
    CRD,
    OPERATOR_NAMESPACE,
    drop_operated,
    patch_spec,
    undocumented_fields,
    wait_lifecycle,
)
from tests.deploy_support import REPO, Kube, kube_for, kustomize_binary, poll, ready, skaffold_run
from tests.observability.promql import (
    LIVE_GRAFANA_VARS,
    dashboard_queries,
    grafana_rule_queries,
    substitute,
)

NAMESPACE = "stockstream"  # overlays/dev, under deploy/kustomize/operator/dev
LOGGING_NAMESPACE = "stockstream-logging"  # deploy/kustomize/logging
# Deleted before and after, with the operator's and the CRD (and the namespace of the other
# cluster tests' operated deploy): a cluster as fresh as the user's, as far as we go.
DEPLOYED_NAMESPACES = (NAMESPACE, LOGGING_NAMESPACE, "stockstream-operated")
NAME = "leaders"  # deploy/kustomize/operator/example/stockstream.yaml
PROFILES = "local-cluster,local-images"  # skaffold.yaml
# Components of the default deploy that are not there: no ingestion pods (the example's feed
# is the replay), so the ingestion panels have nothing to show.
ABSENT_JOBS = ("ingest",)
# Panels read rates over a window of at least two scrapes (scrape interval 15 s).
PANEL_VARS = {**LIVE_GRAFANA_VARS, "$__rate_interval": "1m"}


@pytest.fixture(scope="module")
def user_path(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Kube, Path]]:
    """The default deploy, by skaffold, on a cluster without any of it; removed afterwards
    (the test cluster persists across runs)."""
    kube = replace(kube_for(kube_cluster), namespace=NAMESPACE)
    drop_operated(kube, DEPLOYED_NAMESPACES, wait=True, delete_crd=True)
    log = tmp_path_factory.mktemp("skaffold") / "skaffold-run.log"
    skaffold_run(kube, log, PROFILES)
    yield kube, log
    drop_operated(kube, DEPLOYED_NAMESPACES, wait=False, delete_crd=True)


def prometheus_api(port: int, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}{query}", timeout=20) as reply:
        body = json.loads(reply.read())
    assert body["status"] == "success", body
    return body["data"]


def query(port: int, expr: str) -> list[dict[str, Any]]:
    return list(prometheus_api(port, "/api/v1/query", query=expr)["result"])


def readme_commands() -> list[str]:
    """The commands (`$ ` lines) of the README's first console block but `skaffold dev`,
    which the fixture ran (with only the images swapped)."""
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```console\n(.*?)```", readme, re.DOTALL)
    assert block, "README.md has no console block"
    commands = [line[2:] for line in block.group(1).splitlines() if line.startswith("$ ")]
    assert commands[0] == "skaffold dev", commands
    return commands[1:]


def run_readme_commands(commands: list[str]) -> list[list[str]]:
    """Each command's output lines, the commands run in one shell (as typed one by one)."""
    marker = "@@@ next command @@@"
    script = f"; echo '{marker}'; ".join(commands)
    proc = subprocess.run(
        ["sh", "-ec", script], capture_output=True, text=True, timeout=60, check=True
    )
    return [part.strip().splitlines() for part in proc.stdout.split(marker)]


def leaders_and_end(commands: list[str]) -> tuple[list[tuple[str, float]], int]:
    """The README's top 3 of `leaders:1m` and the end (ms) of the window they belong to; run
    again when a new window landed between the two commands."""

    def consistent() -> tuple[list[tuple[str, float]], int] | None:
        before = run_readme_commands(commands)[-1]
        outputs = run_readme_commands(commands)
        after = outputs[-1]
        if not after or before != after:
            return None
        ranking = [line for out in outputs[:-1] for line in out if line]
        pairs = [(ranking[i], float(ranking[i + 1])) for i in range(0, len(ranking), 2)]
        end = datetime.fromisoformat(after[0].replace("Z", "+00:00"))
        return pairs, int(end.timestamp() * 1000)

    return poll("the README's leaderboard and its window end", consistent, 300, 5)


def one_minute_oracle(end_ms: int) -> Any:
    """The oracle's 1-minute window ending at `end_ms` over the example's feed: the SSE
    session replayed from its start at real time (its first pass keeps the file's times)."""
    ticks = [
        t
        for t in replay_ticks(ReplaySettings(replay_file=SSE_FILE, metrics_port=0))
        if t.ts_ms < end_ms
    ]
    specs = [s for s in DEFAULT_SPECS if s.name == "1m"]
    return oracle_windows(ticks, specs)[("1m", end_ms)]


def ready_pod(kube: Kube, name: str) -> bool:
    return ready(kube.json("get", "pod", name))


def check_deploy(kube: Kube, log: Path) -> None:
    crd = kube.json("get", "crd", CRD)
    established = [c for c in crd["status"]["conditions"] if c["type"] == "Established"]
    assert established and established[0]["status"] == "True", crd["status"]
    text = log.read_text()
    assert "no matches for kind" not in text, text[-3000:]
    sst = kube.json("get", "stockstream", NAME)
    assert sst["metadata"]["creationTimestamp"] >= established[0]["lastTransitionTime"]
    wait_lifecycle(kube, NAME, "Running", 2)

    def available(namespace: str, deployment: str) -> bool:
        status = kube.json("get", "deployment", deployment, "-n", namespace).get("status", {})
        return bool(status.get("availableReplicas"))

    for namespace, deployment in (
        (OPERATOR_NAMESPACE, "stockstream-operator"),
        (NAMESPACE, "prometheus"),
        (NAMESPACE, "alertmanager"),
        (NAMESPACE, "alert-receiver"),
    ):
        poll(f"{deployment} available", partial(available, namespace, deployment), 300, 3)
    for pod in ("redis-0", "redpanda-0"):
        poll(f"{pod} ready", partial(ready_pod, kube, pod), 300, 3)
    logging_kube = replace(kube, namespace=LOGGING_NAMESPACE)
    poll("opensearch-0 ready", partial(ready_pod, logging_kube, "opensearch-0"), 400, 5)
    poll(
        "filebeat ready on the node",
        lambda: logging_kube.json("get", "daemonset", "filebeat")["status"].get("numberReady") == 1,
        300,
        3,
    )

    check_explain(kube, crd)

    # An edit of an immutable field is refused with the CEL rule's message; the StockStream
    # stays the same object (no delete and recreate).
    edited = kube.json("get", "stockstream", NAME)
    edited["spec"]["broker"]["topic"] = "ticks-renamed"
    for key in ("resourceVersion", "managedFields", "generation", "creationTimestamp"):
        edited["metadata"].pop(key, None)
    refused = kube.run("apply", "-f", "-", stdin=json.dumps(edited), check=False)
    assert refused.returncode != 0, refused.stdout
    assert "broker.topic is immutable" in refused.stderr, refused.stderr
    assert kube.json("get", "stockstream", NAME)["metadata"]["uid"] == sst["metadata"]["uid"]


def check_explain(kube: Kube, crd: dict[str, Any]) -> None:
    """`kubectl explain` documents every field of the spec, as the API server serves the CRD
    (issue 25: the descriptions come from the spec model)."""
    assert not undocumented_fields(crd, lambda path: kube.out("explain", path))


def check_leaders(kube: Kube) -> None:
    commands = readme_commands()
    with kube.port_forward("svc/redis", 6379, local_port=6379):  # as skaffold forwards it
        leaders, end_ms = leaders_and_end(commands)
    assert_same_leaders("README's redis-cli leaders:1m", leaders, one_minute_oracle(end_ms), "mean")


def check_metrics(kube: Kube, port: int) -> None:
    def scraped() -> dict[str, list[dict[str, str]]] | None:
        targets = prometheus_api(port, "/api/v1/targets", state="active")["activeTargets"]
        by_job: dict[str, list[dict[str, str]]] = {}
        for target in targets:
            if target["health"] != "up":
                return None
            by_job.setdefault(target["labels"]["job"], []).append(target["labels"])
        # two operator replicas (one active, one standby: both scraped)
        wanted = {"dataflow": 2, "replay": 1, "stockstream-operator": 2}
        if any(len(by_job.get(job, [])) != n for job, n in wanted.items()):
            return None
        return by_job

    jobs = poll("the dataflow, replay and operator pods up in Prometheus", scraped, 300, 5)
    for job in ("dataflow", "replay"):
        assert {t.get("stockstream") for t in jobs[job]} == {NAME}, jobs[job]

    # Prometheus scrapes every 15 s: the operator's last sample may predate `Running`
    # (a clean-clone CI run read `Deploying` right after the status said `Running`).
    def running() -> bool:
        series = query(port, f'stockstream_operator_lifecycle{{name="{NAME}"}} == 1')
        lifecycles = [s["metric"]["lifecycle"] for s in series]
        assert lifecycles == ["Running"], series  # reported by poll if it never holds
        return True

    poll("the operator's lifecycle gauge at Running", running, 90, 5)
    leaders = query(port, "stockstream_operator_leader == 1")  # exactly one replica active
    assert len(leaders) == 1, leaders

    panels = {
        substitute(expr, PANEL_VARS): where
        for expr, where in dashboard_queries().items()
        if not any(f'job="{job}"' in expr for job in ABSENT_JOBS)
    }

    def empty_panels() -> dict[str, str]:
        return {expr: where for expr, where in panels.items() if not query(port, expr)}

    poll("every panel with data", lambda: not empty_panels(), 300, 10)
    for expr in grafana_rule_queries():
        prometheus_api(port, "/api/v1/query", query=expr)  # evaluates (status success)


def received(port: int, alertname: str, status: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/alerts", timeout=10) as reply:
        alerts = json.loads(reply.read())
    return [
        a
        for a in alerts
        if a["labels"].get("alertname") == alertname
        and a["status"] == status
        and a["labels"].get("stockstream") == NAME
    ]


def broker_lost_in_status(kube: Kube) -> dict[str, Any] | None:
    status = kube.json("get", "stockstream", NAME).get("status") or {}
    degraded = next(c for c in status.get("conditions") or [] if c["type"] == "Degraded")
    ok = (
        degraded["status"] == "True"
        and degraded["reason"] == "ProcessesNotReady"
        and "running, not ready (broker unreachable)" in degraded["message"]
    )
    return degraded if ok else None


def check_broker_alert(kube: Kube) -> None:
    with kube.port_forward("svc/alert-receiver", 9095) as port:
        assert not received(port, "StockstreamBrokerUnreachable", "firing")
        kube.run("scale", "statefulset", "redpanda", "--replicas=0")
        try:
            # Issue 25.2: the processes turn unready, and the StockStream's status gives
            # their own reason (the operator reads their /readyz).
            poll(
                "Degraded: the processes say the broker is unreachable",
                partial(broker_lost_in_status, kube),
                300,
                5,
            )
            firing = poll(
                "StockstreamBrokerUnreachable delivered to the receiver",
                lambda: received(port, "StockstreamBrokerUnreachable", "firing"),
                480,
                10,
            )
        finally:
            kube.run("scale", "statefulset", "redpanda", "--replicas=1")
        assert firing[0]["receiver"] == "pager", firing  # critical: the paging route
        assert firing[0]["labels"]["namespace"] == NAMESPACE, firing
        poll(
            "StockstreamBrokerUnreachable resolved at the receiver",
            lambda: received(port, "StockstreamBrokerUnreachable", "resolved"),
            480,
            10,
        )


def check_suspended_is_quiet(kube: Kube, prometheus_port: int) -> None:
    patch_spec(kube, NAME, {"suspend": True})
    wait_lifecycle(kube, NAME, "Suspended")
    poll(
        "no dataflow target left", lambda: not query(prometheus_port, 'up{job="dataflow"}'), 300, 5
    )
    poll(
        "the operator reports Suspended",
        lambda: query(
            prometheus_port,
            f'stockstream_operator_lifecycle{{name="{NAME}", lifecycle="Suspended"}} == 1',
        ),
        120,
        5,
    )
    # Three rule evaluations (15 s apart) with no dataflow process: an absence alert would be
    # pending by now.
    time.sleep(50)
    critical = query(prometheus_port, 'ALERTS{severity="critical"}')
    assert not critical, [a["metric"] for a in critical]


def search(port: int, *terms: tuple[str, str], size: int = 1) -> list[dict[str, Any]]:
    """The newest log documents matching every (field, value) term."""
    body = {
        "size": size,
        "sort": [{"@timestamp": "desc"}],
        "query": {"bool": {"filter": [{"term": {f: v}} for f, v in terms]}},
    }
    reply = httpx.post(f"http://127.0.0.1:{port}/stockstream-logs-*/_search", json=body, timeout=30)
    if reply.status_code == 404:  # no index yet
        return []
    reply.raise_for_status()
    return list(reply.json()["hits"]["hits"])


def check_logs(kube: Kube) -> None:
    logging_kube = replace(kube, namespace=LOGGING_NAMESPACE)
    instance = ("kubernetes.labels.app_kubernetes_io/instance", NAME)
    wanted = {
        "dataflow": [("service.name", "leaders"), ("kubernetes.namespace", NAMESPACE), instance],
        "replay": [("service.name", "replay"), instance],
        "operator": [("service.name", "operator"), ("kubernetes.namespace", OPERATOR_NAMESPACE)],
        "alert receiver": [("service.name", "alert-receiver"), ("log.level", "warning")],
    }
    with logging_kube.port_forward("svc/opensearch", 9200) as port:

        def missing() -> list[str]:
            return [what for what, terms in wanted.items() if not search(port, *terms)]

        def all_found() -> bool:
            if absent := missing():  # named in the failure (the poll reports the last error)
                raise AssertionError(f"no line yet of {absent}; shipper: {shipper_state()}")
            return True

        def shipper_state() -> str:
            return logging_kube.out("logs", "daemonset/filebeat", "--tail=5")[-1500:]

        poll("the pods' log lines searchable", all_found, 300, 10)
        (line,) = search(port, *wanted["alert receiver"])
        assert line["_source"]["message"].startswith("alert "), line
        (line,) = search(port, *wanted["dataflow"])
        today = line["_index"]
        assert line["_source"]["kubernetes"]["pod"]["name"].startswith(f"{NAME}-"), line

        template = httpx.get(
            f"http://127.0.0.1:{port}/_index_template/stockstream-logs", timeout=30
        ).json()
        assert template["index_templates"][0]["name"] == "stockstream-logs", template
        mapping = httpx.get(f"http://127.0.0.1:{port}/{today}/_mapping", timeout=30).json()
        fields = mapping[today]["mappings"]["properties"]
        assert fields["service"]["properties"]["name"]["type"] == "keyword", fields["service"]
        assert fields["@timestamp"]["type"] == "date"

        # The lifecycle: an expired daily index goes, today's and a non-daily one stay.
        for index in ("stockstream-logs-2000.01.01", "stockstream-logs-archive"):
            httpx.put(f"http://127.0.0.1:{port}/{index}", timeout=30).raise_for_status()
        logging_kube.run("create", "job", "--from=cronjob/log-retention", "log-retention-now")
        logging_kube.run(
            "wait",
            "--for=condition=complete",
            "job/log-retention-now",
            "--timeout=300s",
            timeout_s=320,
        )
        indices = {
            row["index"]
            for row in httpx.get(
                f"http://127.0.0.1:{port}/_cat/indices/stockstream-logs-*",
                params={"format": "json"},
                timeout=30,
            ).json()
        }
        assert "stockstream-logs-2000.01.01" not in indices, indices
        assert {today, "stockstream-logs-archive"} <= indices, indices

    settings = logging_kube.json("get", "configmap", "-l", "app.kubernetes.io/component=logging")[
        "items"
    ]
    (es_url,) = {c["data"]["ES_URL"] for c in settings if "ES_URL" in c.get("data", {})}
    assert es_url == f"http://opensearch.{LOGGING_NAMESPACE}.svc:9200", es_url
    assert grafana_log_url() == es_url


def grafana_log_url() -> str:
    """ELASTICSEARCH_URL of Grafana in the default deploy (not run here: AGPL, no image)."""
    out = subprocess.run(
        [kustomize_binary(), "build", str(REPO / "deploy/kustomize/operator/dev")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for doc in yaml.safe_load_all(out):
        if doc and doc["kind"] == "Deployment" and doc["metadata"]["name"] == "grafana":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            env = {e["name"]: e.get("value") for e in container["env"]}
            return str(env["ELASTICSEARCH_URL"])
    raise AssertionError("no grafana Deployment in the default deploy")


@pytest.mark.timeout(2400)
def test_the_users_path_from_skaffold_to_alerts_and_logs(user_path: tuple[Kube, Path]) -> None:
    kube, log = user_path
    check_deploy(kube, log)
    check_leaders(kube)
    with kube.port_forward("svc/prometheus", 9090) as prometheus_port:
        check_metrics(kube, prometheus_port)
        check_broker_alert(kube)
        check_logs(kube)  # while the pipeline's pods run (their metadata comes from them)
        check_suspended_is_quiet(kube, prometheus_port)
