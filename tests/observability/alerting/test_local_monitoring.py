"""`MONITORING=1` local run: Prometheus (the project's rules, real durations) scrapes every
pipeline process and knows its Alertmanager; the URLs are printed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

from stockstream.embedded._process import wait_until
from stockstream.monitoring.servers import http_json
from tests.dataflows.leaders.pipeline import with_db
from tests.observability.conftest import ALERTS


def test_local_run_starts_prometheus_and_alertmanager(kafka_bootstrap: str, redis_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REDIS_URL": with_db(redis_url, 7),
        "TICKS_TOPIC": f"ticks-{suffix}",
        "DLQ_TOPIC": f"dlq-{suffix}",
        "REPLAY_SPEED": "60",
        "MONITORING": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "dataflows.leaders.local"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        urls: dict[str, str] = {}
        deadline = time.monotonic() + 180
        for line in proc.stdout:
            seen.append(line)
            found = re.search(r"prometheus (http://\S+)/alerts\s+alertmanager (http://\S+)", line)
            if found:
                urls = {"prometheus": found.group(1), "alertmanager": found.group(2)}
                break
            assert time.monotonic() < deadline, "".join(seen)[-3000:]
        assert urls, "".join(seen)[-3000:]
        prometheus = urls["prometheus"]

        def scraped() -> bool:
            targets = http_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
            jobs = {t["labels"]["job"] for t in targets if t["health"] == "up"}
            return {"dataflow", "ingest", "prometheus"} <= jobs

        assert wait_until(scraped, 120, interval=1.0), http_json(f"{prometheus}/api/v1/targets")
        rules = http_json(f"{prometheus}/api/v1/rules?type=alert")["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} == {a["alert"] for a in ALERTS}
        managers = http_json(f"{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        assert [m["url"] for m in managers] == [f"{urls['alertmanager']}/api/v2/alerts"]
        assert http_json(f"{urls['alertmanager']}/api/v2/status")["cluster"]["status"] == "disabled"
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0 and "stopping" in rest, rest[-3000:]
