"""Redis keeps what the sink wrote: the sink (logged in as the ACL `writer`) writes history and
leaderboards, redis-server is stopped with SIGTERM or SIGKILL and started again on the same
data directory, and every key comes back with its value (history keys with their TTL)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dataflows.leaders.ranking import RankedWindow
from dataflows.leaders.redis_sink import RedisLeaderboardSink
from stockstream.embedded._process import wait_until
from stockstream.embedded.redis_server import RedisServer
from tests.dataflows.leaders.pipeline import dump_state
from tests.dataflows.leaders.test_redis_sink import END_MS, SLIDE_MS, fig, window

pytestmark = pytest.mark.integration

HISTORY_TTL_S = 3600
USERS = {"writer": "writer-pw", "reader": "reader-pw"}
WINDOWS = 40  # 40 slides of each spec


def windows() -> list[RankedWindow]:
    """1m (mean) and 5m_max (max) windows over 40 consecutive ends, each with other leaders."""
    out = []
    for i in range(WINDOWS):
        end_ms = END_MS + i * SLIDE_MS
        rows = [
            fig(f"S{j:02d}", 10.0 + ((i * 7 + j * 13) % 29) / 3.0, gain_pct=j - i / 10.0)
            for j in range(12)
        ]
        out.append(window(rows, end_ms=end_ms))
        out.append(window(rows, spec="5m_max", end_ms=end_ms, length_s=300, score="max"))
    return out


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(password="admin-pw", users=USERS, workdir=tmp_path / "redis") as running:
        yield running


def write_as_writer(server: RedisServer) -> None:
    """The dataflow's own sink partition, logged in as `writer`."""
    partition = RedisLeaderboardSink(server.url_for("writer"), HISTORY_TTL_S, 0.2).build(
        "leaders_out", 0, 1
    )
    try:
        partition.write_batch(windows())
    finally:
        partition.close()


def ttls(client: redis.Redis) -> dict[bytes, int]:
    return {key: int(client.ttl(key)) for key in client.scan_iter("*")}


def aof_flushed(client: redis.Redis) -> bool:
    """Everything written is in the AOF file (not in Redis's buffer, no fsync pending)."""
    info = client.info("persistence")
    return (
        info["aof_enabled"] == 1
        and info["aof_buffer_length"] == 0
        and info["aof_pending_bio_fsync"] == 0
    )


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restart_on_the_same_dir_loses_nothing(server: RedisServer, how: str) -> None:
    write_as_writer(server)
    admin = server.client()
    try:
        before = dump_state(admin)
        before_ttls = ttls(admin)
        history = [key for key in before if key.startswith("history:")]
        latest = [key for key in before if key.startswith("leaders:")]
        assert len(history) == WINDOWS * 3 + WINDOWS * 2  # leaders+means+gainers, leaders+max
        assert sorted(latest) == ["leaders:1m", "leaders:5m_max"]
        if how == "sigkill":
            # appendfsync everysec: wait until the writes are in the file, then past one
            # more fsync interval, then crash.
            assert wait_until(lambda: aof_flushed(admin), timeout=30), admin.info("persistence")
            assert admin.info("persistence")["aof_last_write_status"] == "ok"
    finally:
        admin.close()
    pid = server.pid
    if how == "sigkill":
        time.sleep(1.5)  # > the 1 s fsync interval; not a timing assertion
        server.restart(kill=True)
    else:
        server.restart()
    assert server.pid != pid
    admin = server.client()
    try:
        assert dump_state(admin) == before
        after_ttls = ttls(admin)
        assert after_ttls.keys() == before_ttls.keys()
        for key, ttl in after_ttls.items():
            if key.startswith(b"history:"):
                assert 0 < ttl <= before_ttls[key], (key, ttl)  # still expiring, not renewed
            else:
                assert ttl == -1, key  # latest keys never expire
    finally:
        admin.close()
    # The writer picks up where it left off after the restart (scripts reloaded on NOSCRIPT).
    write_as_writer(server)


def test_a_new_object_on_the_same_dir_and_port_sees_the_data(tmp_path: Path) -> None:
    """The documented way for another process (a fault test) to restart on the same data."""
    workdir = tmp_path / "redis"
    first = RedisServer(password="admin-pw", users=USERS, workdir=workdir)
    with first:
        write_as_writer(first)
        admin = first.client()
        before = dump_state(admin)
        admin.close()
    assert (workdir / "appendonlydir").is_dir()
    with RedisServer(port=first.port, password="admin-pw", users=USERS, workdir=workdir) as again:
        admin = again.client()
        try:
            assert dump_state(admin) == before
        finally:
            admin.close()
    assert workdir.is_dir(), "a given workdir is never deleted"


def test_without_persistence_nothing_survives(tmp_path: Path) -> None:
    """The control: the same restart without AOF/RDB loses everything, so the test above
    really measures persistence."""
    with RedisServer(persistence=False, workdir=tmp_path / "redis") as server:
        client = server.client()
        client.zadd("leaders:1m", {"AAA": 1.0})
        client.close()
        server.restart()
        client = server.client()
        try:
            assert client.dbsize() == 0
        finally:
            client.close()
