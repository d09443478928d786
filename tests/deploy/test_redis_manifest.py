"""The Kubernetes Redis: persistent (AOF on a PVC), and its container script, taken from the
rendered dev overlay, really starts redis-server with the ACL users of the dev Secret (run here
with the paths of its volumes moved to a temp dir)."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from stockstream import redis_acl
from stockstream.embedded._process import wait_until
from stockstream.embedded.ports import free_port
from tests.deploy.conftest import Manifest, container, find, pod_spec

pytestmark = pytest.mark.integration


def redis_objects(objs: list[Manifest]) -> tuple[Manifest, dict]:
    sts = find(objs, "StatefulSet", "redis")
    return sts, container(sts, "redis")


def test_data_is_on_a_pvc_and_aof_is_on(
    target: str, render: Callable[[str], list[Manifest]]
) -> None:
    sts, redis_c = redis_objects(render(target))
    script = redis_c["command"][-1]
    assert "--appendonly yes" in script and "--appendfsync everysec" in script
    assert "--dir /data" in script
    mounts = {m["name"]: m["mountPath"] for m in redis_c["volumeMounts"]}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert mounts[claim["metadata"]["name"]] == "/data"
    assert claim["metadata"]["name"] not in {v["name"] for v in pod_spec(sts)["volumes"]}
    assert sts["spec"]["replicas"] == 1
    assert redis_c["securityContext"]["readOnlyRootFilesystem"] is True


def test_acl_rules_and_passwords_come_from_one_place(
    target: str, render: Callable[[str], list[Manifest]]
) -> None:
    objs = render(target)
    sts, _ = redis_objects(objs)
    volumes = {v["name"]: v for v in pod_spec(sts)["volumes"]}
    rules = find(objs, "ConfigMap", "redis-users")
    assert volumes["acl"]["configMap"]["name"] == rules["metadata"]["name"]
    assert rules["data"]["redis-users.acl"] == redis_acl.template()
    paths = {item["path"] for item in volumes["passwords"]["secret"]["items"]}
    assert paths == {user.name for user in redis_acl.USERS}


@pytest.fixture
def started(
    render: Callable[[str], list[Manifest]], tmp_path: Path
) -> Iterator[tuple[int, dict[str, str], Path]]:
    """The dev overlay's Redis script, run with its volumes under tmp_path."""
    objs = render("overlays/dev")
    sts, redis_c = redis_objects(objs)
    secret = find(objs, "Secret", "redis-auth")
    items = next(v for v in pod_spec(sts)["volumes"] if v["name"] == "passwords")["secret"]
    passwords = {
        item["path"]: base64.b64decode(secret["data"][item["key"]]).decode()
        for item in items["items"]
    }
    acl_dir, pw_dir, tmp_dir, data = (tmp_path / d for d in ("acl", "pw", "tmp", "data"))
    for directory in (acl_dir, pw_dir, tmp_dir, data):
        directory.mkdir()
    acl = find(objs, "ConfigMap", "redis-users")["data"]["redis-users.acl"]
    (acl_dir / "redis-users.acl").write_text(acl)
    for name, password in passwords.items():
        (pw_dir / name).write_text(password)
    port = free_port()
    script = redis_c["command"][-1]
    # /tmp/ first: the directories put in afterwards are under /tmp themselves.
    for old, new in (
        ("/tmp/", f"{tmp_dir}/"),
        ("/etc/redis/acl", str(acl_dir)),
        ("/etc/redis/passwords", str(pw_dir)),
        ("--dir /data", f"--dir {data}"),
    ):
        assert old in script
        script = script.replace(old, new)
    script = script.replace(
        'exec redis-server "$conf"', f'exec redis-server "$conf" --port {port} --bind 127.0.0.1'
    )
    env = {"PATH": os.environ["PATH"], "REDIS_MAXMEMORY": "64mb"}
    assert redis_c["command"][:2] == ["sh", "-c"]
    log = open(tmp_path / "redis.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["sh", "-c", script], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield port, passwords, data
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
        print((tmp_path / "redis.log").read_text())
        assert not any(p in (tmp_dir / "redis.conf").read_text() for p in passwords.values())
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_the_container_script_starts_redis_with_the_users(
    started: tuple[int, dict[str, str], Path],
) -> None:
    port, passwords, data = started

    def client(user: str) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=port, username=user, password=passwords[user], socket_timeout=5
        )

    def up() -> bool:
        try:
            return bool(client("reader").ping())
        except redis.RedisError:
            return False

    assert wait_until(up, timeout=30), "the script did not start redis-server"
    assert set(passwords) == {"default", "writer", "reader"}
    writer, reader, admin = client("writer"), client("reader"), client("default")
    try:
        writer.zadd("leaders:1m", {"AAA": 2.0})
        assert reader.zrevrange("leaders:1m", 0, -1) == [b"AAA"]
        with pytest.raises(redis.exceptions.NoPermissionError):
            reader.zadd("leaders:1m", {"BBB": 1.0})
        with pytest.raises(redis.exceptions.NoPermissionError):
            writer.flushall()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port).ping()
        persistence = admin.info("persistence")
        assert persistence["aof_enabled"] == 1
        assert admin.config_get("appendfsync")["appendfsync"] == "everysec"
    finally:
        for c in (writer, reader, admin):
            c.close()
    assert (data / "appendonlydir").is_dir()
