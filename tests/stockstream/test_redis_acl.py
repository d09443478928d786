"""The ACL users of stockstream.redis_acl on a real redis-server: what each may and may not do,
the shipped Kubernetes template, and `redis-cli --user reader` as the README documents it."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from stockstream import redis_acl
from stockstream.embedded.redis_server import RedisServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "kustomize" / "base" / "redis-users.acl"
PASSWORDS = {"writer": "w-pass:1/2", "reader": "r-pass"}
ADMIN_PASSWORD = "admin-pass"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer(password=ADMIN_PASSWORD, users=PASSWORDS) as running:
        yield running


@pytest.fixture
def admin(server: RedisServer) -> Iterator[redis.Redis]:
    client = server.client()
    client.flushall()
    client.zadd("leaders:1m", {"AAA": 3.0, "BBB": 2.0})
    client.set("unrelated", "keep")
    try:
        yield client
    finally:
        client.close()


def as_user(server: RedisServer, user: str) -> redis.Redis:
    return redis.Redis.from_url(server.url_for(user))


# (user, command args) that must succeed on the fixture's data
ALLOWED = [
    ("reader", ("ZREVRANGE", "leaders:1m", "0", "-1", "WITHSCORES")),
    ("reader", ("HGETALL", "window:1m")),
    ("reader", ("SCAN", "0", "MATCH", "history:*")),
    ("reader", ("ZSCORE", "means:1m", "AAA")),
    ("reader", ("PING",)),
    ("writer", ("ZADD", "leaders:1m", "1", "CCC")),
    ("writer", ("HSET", "figures:AAA", "1m.mean", "1")),
    ("writer", ("DEL", "history:leaders:1m:60")),
    ("writer", ("PING",)),
]

# (user, command args) that must be refused with NOPERM
DENIED = [
    ("reader", ("ZADD", "leaders:1m", "1", "CCC")),
    ("reader", ("DEL", "leaders:1m")),
    ("reader", ("FLUSHALL",)),
    ("reader", ("FLUSHDB",)),
    ("reader", ("KEYS", "*")),
    ("reader", ("GET", "unrelated")),
    ("reader", ("CONFIG", "GET", "dir")),
    ("reader", ("EVAL", "return 1", "0")),
    ("writer", ("FLUSHALL",)),
    ("writer", ("FLUSHDB",)),
    ("writer", ("SET", "leaders:1m", "x")),
    ("writer", ("ZADD", "other:1m", "1", "CCC")),
    ("writer", ("DEL", "unrelated")),
    ("writer", ("GET", "unrelated")),
    ("writer", ("EVAL", "return redis.call('FLUSHALL')", "0")),
    ("writer", ("KEYS", "*")),
    ("writer", ("CONFIG", "SET", "appendonly", "no")),
    ("writer", ("ACL", "SETUSER", "writer", "+@all")),
    ("writer", ("SHUTDOWN", "NOSAVE")),
]


@pytest.mark.parametrize(("user", "args"), ALLOWED, ids=str)
def test_allowed(server: RedisServer, admin: redis.Redis, user: str, args: tuple[str, ...]) -> None:
    client = as_user(server, user)
    try:
        client.execute_command(*args)
    finally:
        client.close()


@pytest.mark.parametrize(("user", "args"), DENIED, ids=str)
def test_denied(server: RedisServer, admin: redis.Redis, user: str, args: tuple[str, ...]) -> None:
    client = as_user(server, user)
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.execute_command(*args)
    finally:
        client.close()
    assert admin.get("unrelated") == b"keep"
    assert admin.zrevrange("leaders:1m", 0, -1) == [b"AAA", b"BBB"]


def test_script_inside_eval_is_checked_against_the_writer(
    server: RedisServer, admin: redis.Redis
) -> None:
    """Commands a Lua script calls are checked against the caller: a script loaded by the
    admin cannot write a key outside the writer's patterns when the writer runs it."""
    sha = admin.script_load("return redis.call('SET', KEYS[1], 'x')")
    writer = as_user(server, "writer")
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            writer.evalsha(sha, 1, "unrelated")
        with pytest.raises(redis.exceptions.ResponseError, match="can't run this command"):
            writer.evalsha(sha, 1, "leaders:1m")  # SET is not the writer's
    finally:
        writer.close()
    assert admin.get("unrelated") == b"keep"


def test_default_user_needs_the_admin_password(server: RedisServer) -> None:
    anonymous = redis.Redis(host=server.host, port=server.port)
    try:
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
    finally:
        anonymous.close()
    wrong = redis.Redis(host=server.host, port=server.port, username="reader", password="nope")
    try:
        with pytest.raises(redis.AuthenticationError):
            wrong.ping()
    finally:
        wrong.close()


def test_no_password_in_config_or_argv(server: RedisServer) -> None:
    config = server.config_path.read_text()
    for password in (*PASSWORDS.values(), ADMIN_PASSWORD):
        assert password not in config
        assert redis_acl.password_hash(password) in config
    assert server.config_path.stat().st_mode & 0o077 == 0
    argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode()
    assert all(p not in argv for p in (*PASSWORDS.values(), ADMIN_PASSWORD))


def test_redis_cli_as_reader(server: RedisServer, admin: redis.Redis) -> None:
    """The README's command: `REDISCLI_AUTH=<pw> redis-cli --user reader ZREVRANGE ...`."""
    env = {**os.environ, "REDISCLI_AUTH": PASSWORDS["reader"]}
    base = ["redis-cli", "-h", server.host, "-p", str(server.port), "--user", "reader"]

    def cli(*args: str) -> str:
        proc = subprocess.run(
            [*base, *args], env=env, capture_output=True, text=True, timeout=30, check=True
        )
        return proc.stdout

    assert cli("ZREVRANGE", "leaders:1m", "0", "2", "WITHSCORES").split() == [
        "AAA",
        "3",
        "BBB",
        "2",
    ]
    assert "NOPERM" in cli("ZADD", "leaders:1m", "9", "EVIL")
    assert "NOPERM" in cli("FLUSHALL")
    assert admin.zrevrange("leaders:1m", 0, -1) == [b"AAA", b"BBB"]


def test_users_need_an_admin_password() -> None:
    with pytest.raises(ValueError, match="password for the default"):
        RedisServer(users=PASSWORDS)
    with pytest.raises(ValueError, match="unknown Redis users"):
        RedisServer(password="x", users={"root": "x"})


def test_kubernetes_template_is_generated_from_the_rules() -> None:
    """deploy/kustomize/base/redis-users.acl is `python -m stockstream.redis_acl`'s output."""
    assert TEMPLATE.read_text() == redis_acl.template(), (
        "regenerate: python -m stockstream.redis_acl > deploy/kustomize/base/redis-users.acl"
    )
    names = [
        line.split()[1] for line in TEMPLATE.read_text().splitlines() if line.startswith("user ")
    ]
    assert names == ["default", "writer", "reader"]


def test_writer_commands_are_exactly_what_the_sink_sends() -> None:
    """SINK_COMMANDS is what the sink's client sends (EVALSHA, SCRIPT LOAD) plus every command
    its Lua scripts call: Redis checks a script's calls against the caller's ACL, so a command
    added to a script and not to the writer fails every write on the cluster (NOPERM), and one
    left in the list after a script stopped calling it is a permission nobody needs."""
    from dataflows.leaders.redis_sink import SCRIPTS

    called = {
        command.lower()
        for script in SCRIPTS
        for command in re.findall(r"redis\.p?call\(\s*'([A-Za-z]+)'", script)
    }
    assert called, "no redis.call found: has the scripts' quoting changed?"
    assert set(redis_acl.SINK_COMMANDS) == {"evalsha", "script|load"} | called
