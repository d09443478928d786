"""A real dataflow run logged in as the ACL `writer` (REDIS_URL redis://writer:PW@...) writes
every window; `stockstream-leaders` as `reader` shows them; neither can flush or write
elsewhere; and a SIGKILLed Redis restarted on its directory still has all of it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from dataflows.leaders import show
from dataflows.leaders.local import LocalRunSettings, servers
from services.replay.producer import run_replay
from services.replay.settings import ReplaySettings
from stockstream.embedded._process import wait_until
from stockstream.embedded.redis_server import RedisServer
from tests.dataflows.leaders.pipeline import (
    SSE_FILE,
    dataflow_env,
    dump_state,
    run_bounded,
    scored,
)

pytestmark = pytest.mark.integration

USERS = {"writer": "writer-pw", "reader": "reader-pw"}
TICKS = 3000  # 30 stocks every 3 s: about 5 minutes of the session


def publish(bootstrap: str, topic: str) -> None:
    settings = ReplaySettings(
        kafka_bootstrap_servers=bootstrap,
        ticks_topic=topic,
        replay_file=str(SSE_FILE),
        replay_from="09:30",
        replay_speed=0,
        replay_limit=TICKS,
        metrics_port=0,
    )
    result = run_replay(settings)
    assert result.published == TICKS and result.failed == 0 and result.undelivered == 0, result


@pytest.mark.timeout(1200)  # a real bounded dataflow run (start-up, 3000 ticks) on a loaded machine
def test_dataflow_as_writer_reader_reads_and_restart_keeps_all(
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic, dlq = kafka_topic_factory("ticks", partitions=2), kafka_topic_factory("dlq", 1)
    publish(kafka_bootstrap, topic)
    with RedisServer(password="admin-pw", users=USERS, workdir=tmp_path / "redis") as server:
        env = dataflow_env(kafka_bootstrap, topic, dlq, server.url_for("writer"))
        run_bounded(env, processes=1, log_dir=tmp_path / "logs")

        admin = server.client()
        try:
            state = dump_state(admin)
            # Every spec wrote its latest keys and history; nothing else was needed.
            for spec in ("1m", "5m", "15m", "5m_max"):
                assert f"leaders:{spec}" in state and f"window:{spec}" in state, spec
            assert sum(key.startswith("history:leaders:1m:") for key in state) >= 20
            assert state["leaders:1m"], "an empty leaderboard"
            denied = [entry for entry in admin.acl_log() if entry.get("username") == "writer"]
            assert denied == [], f"the dataflow was refused something: {denied}"
        finally:
            admin.close()

        # The reader's view through the CLI, as the README documents it.
        assert show.main(["--redis-url", server.url_for("reader"), "--windows", "1m,5m_max"]) == 0
        out = capsys.readouterr().out
        top = [
            symbol.decode()
            for symbol, _ in scored(
                redis.Redis.from_url(server.url_for("reader")).zrevrange(
                    "leaders:1m", 0, 2, withscores=True
                )
            )
        ]
        assert all(symbol in out for symbol in top), out

        reader = redis.Redis.from_url(server.url_for("reader"))
        writer = redis.Redis.from_url(server.url_for("writer"))
        try:
            for client in (reader, writer):
                with pytest.raises(redis.exceptions.NoPermissionError):
                    client.flushall()
                with pytest.raises(redis.exceptions.NoPermissionError):
                    client.set("elsewhere", "x")
            with pytest.raises(redis.exceptions.NoPermissionError):
                reader.zadd("leaders:1m", {"EVIL": 1e9})
        finally:
            reader.close()
            writer.close()

        # Crash Redis after the fsync interval; the restart on the same dir keeps everything.
        admin = server.client()
        try:
            assert wait_until(lambda: admin.info("persistence")["aof_buffer_length"] == 0, 30)
        finally:
            admin.close()
        time.sleep(1.5)  # > appendfsync everysec's interval; not a timing assertion
        server.restart(kill=True)
        admin = server.client()
        try:
            assert dump_state(admin) == state
        finally:
            admin.close()


def test_local_run_redis_has_the_users_and_persists(kafka_bootstrap: str, tmp_path: Path) -> None:
    """`./scripts/run-local.sh` without REDIS_URL: the dataflow gets the writer's URL, the
    leaderboard display the reader's, and the data directory holds an AOF."""
    settings = LocalRunSettings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=None)
    with servers(settings, tmp_path) as (_, urls):
        assert urls.writer.startswith("redis://writer:")
        assert urls.reader.startswith("redis://reader:")
        writer, reader = redis.Redis.from_url(urls.writer), redis.Redis.from_url(urls.reader)
        try:
            writer.zadd("leaders:1m", {"AAA": 1.0})
            assert reader.zrevrange("leaders:1m", 0, -1) == [b"AAA"]
            with pytest.raises(redis.exceptions.NoPermissionError):
                reader.zadd("leaders:1m", {"BBB": 2.0})
            with pytest.raises(redis.exceptions.NoPermissionError):
                writer.flushall()
            with pytest.raises(redis.AuthenticationError):
                redis.Redis.from_url(urls.reader.replace("reader:", "reader:x")).ping()
        finally:
            writer.close()
            reader.close()
        assert (tmp_path / "redis" / "appendonlydir").is_dir()
