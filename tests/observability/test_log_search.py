"""The logs of a real pipeline run, shipped into a real OpenSearch and searched back.

The processes (replay feed, two dataflow processes) write container log files in the CRI format
as containerd does (lines longer than `MAX_LINE_BYTES` split into partial records); Filebeat
(OSS 7.12.1, built from the Go module proxy) reads them with its `container` input and the
project's `observability/logging/filebeat.yml`, into OpenSearch 2.19.6 (Maven Central) with the
project's index template. Fluent Bit, the shipper of the Kubernetes manifests, cannot be
installed here; both shippers share the template and the field names.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from stockstream.embedded.redis_server import RedisServer
from tests.cri_log_support import ContainerLogs
from tests.filebeat_support import Filebeat, install_filebeat
from tests.observability.log_pipeline import BAD_TICKS, PipelineRun, run_pipeline
from tests.observability.promql import OBSERVABILITY
from tests.opensearch_support import OpenSearchServer, install_opensearch

TEMPLATE = OBSERVABILITY / "logging/index-template.json"
INDEX = "stockstream-logs-*"
# containerd's max_container_log_line_size, lowered from 16 KiB so that the ECS lines with
# extras (the dead-letter warnings, the Redis retries) are written as partial records.
MAX_LINE_BYTES = 400


@dataclass
class Shipped:
    node: OpenSearchServer
    run: PipelineRun
    logs: ContainerLogs
    lines: list[str]  # every output line, reassembled from the CRI records

    def search(self, *filters: dict[str, Any]) -> list[dict[str, Any]]:
        body = {
            "size": 100,
            "query": {"bool": {"filter": list(filters)}},
            "sort": [{"@timestamp": "asc"}],
        }
        reply = self.node.request("POST", f"/{INDEX}/_search", body)
        return [hit["_source"] for hit in reply["hits"]["hits"]]

    def count(self, *filters: dict[str, Any]) -> int:
        body = {"query": {"bool": {"filter": list(filters)}}}
        return int(self.node.request("POST", f"/{INDEX}/_count", body)["count"])


def term(field: str, value: Any) -> dict[str, Any]:
    return {"term": {field: value}}


def reassembled(path: Path) -> list[str]:
    """The output lines of one CRI log file: P records joined to the next F record."""
    lines, pending = [], ""
    for record in path.read_text().splitlines():
        _stamp, _stream, tag, content = record.split(" ", 3)
        pending += content
        if tag == "F":
            lines.append(pending)
            pending = ""
    return lines


def settle(future: Future[Any]) -> None:
    """Wait for a background start to end, whatever its outcome."""
    with suppress(Exception):
        future.result()


def count(node: OpenSearchServer) -> int:
    """Lines indexed so far; 0 while the index Filebeat just created has no started shard
    (a search then answers 503 "all shards failed": seen on a loaded machine)."""
    try:
        node.request("POST", f"/{INDEX}/_refresh")
        return int(node.request("GET", f"/{INDEX}/_count")["count"])
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code == 503:
            return 0
        raise


def log_index(action: str, node: OpenSearchServer, **env: str) -> None:
    """`python -m stockstream.log_index <action>` against `node`, as the Job and CronJob run it."""
    proc = subprocess.run(
        [sys.executable, "-m", "stockstream.log_index", action],
        env={
            "PATH": os.environ["PATH"],
            "ES_URL": node.url,
            "LOG_INDEX_TEMPLATE_FILE": str(TEMPLATE),
            "LOG_INDEX_WAIT_S": "60",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def shipped(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shipped]:
    """Run the pipeline (while OpenSearch starts), then ship every line and wait for all."""
    node = OpenSearchServer(install_opensearch())
    filebeat_binary = install_filebeat()
    logs = ContainerLogs(tmp_path_factory.mktemp("var-log"), max_line_bytes=MAX_LINE_BYTES)
    with ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(1))
        stack.callback(node.close)
        starting = pool.submit(node.start)
        stack.callback(settle, starting)  # runs before node.close
        redis_server = stack.enter_context(RedisServer())
        run = run_pipeline(logs, kafka_bootstrap, redis_server)
        starting.result()
        # Filebeat 7.12 checks the version of `GET /`: OpenSearch answers 7.10.2 with this.
        node.request(
            "PUT",
            "/_cluster/settings",
            {"persistent": {"compatibility.override_main_response_version": True}},
        )
        log_index("install", node)  # as the logging component's Job does
        beat = stack.enter_context(
            Filebeat(
                filebeat_binary,
                {
                    "ES_URL": node.url,
                    "STOCKSTREAM_NAMESPACE": logs.namespace,
                    "STOCKSTREAM_OPERATOR_NAMESPACE": "stockstream-system",
                    "STOCKSTREAM_CONTAINER_LOGS": str(logs.containers),
                },
            )
        )
        lines = [line for proc in run.processes for line in reassembled(proc.path)]
        deadline = time.monotonic() + 180
        while count(node) < len(lines) and time.monotonic() < deadline:
            assert beat.is_running, beat.log_tail()
            dropped = beat.stats()["libbeat"]["output"]["events"].get("dropped", 0)
            assert dropped == 0, f"OpenSearch rejected {dropped} lines:\n{beat.log_tail()}"
            time.sleep(1)
        shipped_count = count(node)
        assert shipped_count == len(lines), (
            f"{shipped_count} of {len(lines)} lines indexed; filebeat:\n{beat.log_tail()}"
        )
        yield Shipped(node, run, logs, lines)


def test_every_line_is_indexed_with_the_ecs_fields(shipped: Shipped) -> None:
    json_lines = [json.loads(line) for line in shipped.lines if line.startswith("{")]
    assert json_lines, "the processes wrote no JSON log line"
    # Every JSON line was decoded: the fallback level is only for lines that are not JSON.
    unknown = shipped.count(term("log.level", "unknown"))
    assert unknown == len(shipped.lines) - len(json_lines), shipped.search(
        term("log.level", "unknown")
    )[:3]
    assert shipped.count(term("service.name", "leaders")) == sum(
        1 for line in json_lines if line["service"]["name"] == "leaders"
    )
    mapping = shipped.node.request(
        "GET", f"/{INDEX}/_mapping/field/log.level,service.name,stockstream.reason,@timestamp"
    )
    (fields,) = [index["mappings"] for index in mapping.values()]
    assert fields["log.level"]["mapping"]["level"]["type"] == "keyword"
    assert fields["service.name"]["mapping"]["name"]["type"] == "keyword"
    assert fields["stockstream.reason"]["mapping"]["reason"]["type"] == "keyword"
    assert fields["@timestamp"]["mapping"]["@timestamp"]["type"] == "date"


def test_partial_lines_were_written_and_joined(shipped: Shipped) -> None:
    assert shipped.logs.partial_records > 0
    assert any(len(line.encode()) <= MAX_LINE_BYTES for line in shipped.lines)
    longest = max((line for line in shipped.lines if line.startswith("{")), key=len)
    record = json.loads(longest)
    found = shipped.search(
        term("@timestamp", record["@timestamp"]),
        term("message.keyword", record["message"]),
        term("process.pid", record["process"]["pid"]),
    )
    assert found, f"the longest line ({len(longest)} bytes) is not in the index: {longest}"
    assert found[0]["log"]["logger"] == record["log"]["logger"]


def test_a_dataflow_process_start_line_by_service_and_level(shipped: Shipped) -> None:
    starts = shipped.search(
        term("service.name", "leaders"),
        term("log.level", "info"),
        term("message.keyword", "starting"),
    )
    assert sorted(hit["stockstream"]["process_id"] for hit in starts) == [0, 1]
    assert {hit["log"]["logger"] for hit in starts} == {"dataflows.leaders"}
    assert {hit["stream"] for hit in starts} == {"stdout"}


@pytest.mark.parametrize("reason", [reason for _, _, reason in BAD_TICKS])
def test_a_dead_letter_warning_with_its_reason(shipped: Shipped, reason: str) -> None:
    found = shipped.search(
        term("service.name", "leaders"),
        term("log.level", "warning"),
        term("stockstream.reason", reason),
    )
    assert found, f"no dead-letter warning with reason {reason}"
    hit = found[0]
    assert hit["message"] == "ticks dead-lettered"
    assert hit["stockstream"]["count"] >= 1
    assert hit["stockstream"]["source_topic"] == shipped.run.topic
    # The event time is the line's own @timestamp, not the time the runtime wrote it.
    line = next(
        json.loads(x)
        for x in shipped.lines
        if '"ticks dead-lettered"' in x and f'"reason":"{reason}"' in x
    )
    assert hit["@timestamp"] == line["@timestamp"]


def test_a_redis_retry_error(shipped: Shipped) -> None:
    found = shipped.search(
        term("service.name", "leaders"),
        term("log.level", "warning"),
        {"match_phrase": {"message": "redis write failed"}},
    )
    assert found, "no Redis retry line"
    hit = found[0]["stockstream"]
    assert hit["error"] and hit["window"] in {"1m", "5m", "15m", "5m_max"}
    assert hit["retry_in_s"] > 0


def test_the_replay_feed_lines(shipped: Shipped) -> None:
    finished = shipped.search(
        term("service.name", "replay"), term("message.keyword", "replay finished")
    )
    assert len(finished) == 2  # phase 1 and phase 2
    assert all(hit["stockstream"]["failed"] == 0 for hit in finished)


def test_the_retention_deletes_only_expired_daily_indices(shipped: Shipped) -> None:
    """`log_index prune` (the logging component's CronJob) with 2 days: yesterday stays."""
    today = datetime.now(UTC).date()
    day = {n: f"stockstream-logs-{today - timedelta(days=n):%Y.%m.%d}" for n in (1, 2, 30)}
    for index in (*day.values(), "stockstream-logs-archive"):
        shipped.node.request("PUT", f"/{index}")
    log_index("prune", shipped.node, LOG_RETENTION_DAYS="2")
    left = {
        row["index"]
        for row in shipped.node.request("GET", "/_cat/indices/stockstream-logs-*", format="json")
    }
    assert day[1] in left and "stockstream-logs-archive" in left, left
    assert not {day[2], day[30]} & left, left
    assert any(index.endswith(f"{today:%Y.%m.%d}") for index in left), "today's lines deleted"
