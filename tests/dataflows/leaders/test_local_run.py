"""The README's run command prints live leaderboards; the leaders CLI prints Redis as a table."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
import redis

from dataflows.leaders import show
from tests.dataflows.leaders.pipeline import with_db

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("provider", "extra_env", "symbols"),
    [("replay", {}, 30), ("simulate", {"SIMULATE_RATE": "3000", "SIMULATE_SYMBOLS": "40"}, 40)],
)
def test_local_run_prints_every_leaderboard_until_ctrl_c(
    provider: str, extra_env: dict[str, str], symbols: int, kafka_bootstrap: str, redis_url: str
) -> None:
    url = with_db(redis_url, 6)
    redis.Redis.from_url(url).flushdb()
    suffix = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REDIS_URL": url,
        "TICKS_TOPIC": f"ticks-{suffix}",
        "DLQ_TOPIC": f"dlq-{suffix}",
        "REPLAY_SPEED": "60",
        "PROVIDER": provider,
        **extra_env,
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
    metrics_urls: list[str] = []
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:  # until the 1, 5 and 15 minute boards have a third leader
            seen.append(line)
            if "stockstream local run" in line:
                seen = [line]
            metrics_urls += re.findall(r"http://\S+/metrics", line)
            board = "".join(seen)
            if (
                all(f"\n{w}  [" in board for w in ("1m", "5m", "15m"))
                and board.count("\n   3  ") >= 3
            ):
                break
            assert time.monotonic() < deadline, board[-3000:]
        assert len(metrics_urls) == 2, "one metrics endpoint per dataflow process"
        scraped = [urllib.request.urlopen(url, timeout=10).read().decode() for url in metrics_urls]
        for url in metrics_urls:
            health = urllib.request.urlopen(url.replace("/metrics", "/healthz"), timeout=10)
            assert health.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    board = "".join(seen)
    for window in ("1m", "5m", "15m"):
        assert f"\n{window}  [" in board, board
    assert f"{symbols} symbols" in board, board
    assert proc.returncode == 0 and "stopping" in rest, rest[-3000:]
    assert total(scraped, "stockstream_ticks_decoded_total") > 0
    assert total(scraped, 'stockstream_windows_closed_total{window="1m"}') > 0
    assert total(scraped, 'stockstream_leaderboard_writes_total{window="15m"}') > 0


def total(expositions: list[str], name: str) -> float:
    """A sample's value summed over Prometheus text expositions (absent counts as 0)."""
    return sum(
        float(line.split()[-1])
        for exposition in expositions
        for line in exposition.splitlines()
        if line.startswith(name + " ")
    )


def test_cli_table_matches_redis(
    redis_client: redis.Redis, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    redis_client.hset(
        "window:1m",
        mapping={
            "end": 1638322260,
            "start": 1638322200,
            "start_iso": "2021-12-01T01:30:00.000Z",
            "end_iso": "2021-12-01T01:31:00.000Z",
            "partial": 1,
            "symbols": 30,
        },
    )
    redis_client.zadd("leaders:1m", {"600519": 2050.5, "688339": 299.95, "601116": 7.87})
    redis_client.hset(
        "figures:600519", mapping={"1m.gain_pct": 0.25, "1m.volatility": 0.001, "1m.count": 20}
    )
    assert show.main(["--redis-url", redis_url, "--windows", "1m,5m"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]
    assert [row[1] for row in rows] == ["600519", "688339", "601116"]
    assert rows[0][2:] == ["2050.5000", "0.250", "0.001000", "20"]
    assert rows[1][3:] == ["-", "-", "-"]
    assert "(partial)" in out and "5m: no window closed yet" in out
