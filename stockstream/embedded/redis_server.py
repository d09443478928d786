"""A real ``redis-server`` on a free loopback port, for local runs and tests.

Persistence: AOF (``appendfsync everysec``) plus RDB snapshots in the working directory, so a
server stopped with SIGTERM (``stop()``) or SIGKILL (``kill()``) and started again on the same
directory (``start()``, ``restart()``, or a new ``RedisServer(workdir=..., port=...)``) keeps
its data (with SIGKILL: everything acknowledged at least one fsync interval, 1 s, before).

ACL: ``users={"writer": pw, "reader": pw}`` adds the users of ``stockstream.redis_acl``;
``url_for("reader")`` is the URL that logs in as one of them.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from stockstream import redis_acl
from stockstream.embedded import _process
from stockstream.embedded._server import EmbeddedServer
from stockstream.embedded.ports import LOOPBACK, free_port

__all__ = ["RedisServer"]


class RedisServer(EmbeddedServer):
    workdir_prefix = "stockstream-redis-"

    """A ``redis-server`` process bound to 127.0.0.1, persisting to its working directory.

    Usage::

        with RedisServer() as server:
            client = redis.Redis.from_url(server.url)

    ``start()``/``stop()``/``kill()``/``restart()`` may be called repeatedly; the port,
    password, users and working directory (hence the data: AOF + RDB) are kept between them.
    To restart on the same data from another object (another process), pass the same
    ``workdir`` and ``port``. ``close()`` (or leaving the ``with`` block) stops the server and
    deletes the working directory if this object created it (a given ``workdir`` is kept).
    ``persistence=False`` turns AOF and RDB off (data lives only as long as the process).
    """

    def __init__(
        self,
        port: int | None = None,
        password: str | None = None,
        *,
        executable: str = "redis-server",
        workdir: Path | str | None = None,
        persistence: bool = True,
        users: Mapping[str, str] | None = None,
        startup_timeout: float = 15.0,
        stop_timeout: float = 10.0,
    ) -> None:
        """Configure (but do not start) a server; ``port=None`` picks a free port.

        ``password`` protects the ``default`` (administrator) user. ``users`` maps names of
        ``stockstream.redis_acl.USERS`` (``writer``, ``reader``) to their passwords.
        """
        known = {user.name: user for user in redis_acl.USERS if user.name != "default"}
        unknown = set(users or {}) - set(known)
        if unknown:
            raise ValueError(f"unknown Redis users {sorted(unknown)}; known: {sorted(known)}")
        if users and not password:
            raise ValueError("ACL users need a password for the default (admin) user too")
        self.host: str = LOOPBACK
        self.port: int = port if port is not None else free_port()
        self.password: str | None = password
        self.persistence = persistence
        self.users: dict[str, str] = dict(users or {})
        self._acl_lines = [redis_acl.user_line(known[name], pw) for name, pw in self.users.items()]
        if password:
            self._acl_lines.insert(0, redis_acl.user_line(redis_acl.ADMIN, password))
        self.executable = executable
        self.startup_timeout = startup_timeout
        super().__init__(workdir, stop_timeout)

    # -- properties -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (``redis://:PASSWORD@...`` when a password is set)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def url_for(self, user: str) -> str:
        """``redis://USER:PASSWORD@127.0.0.1:PORT/0`` for one of ``users``."""
        return f"redis://{user}:{quote(self.users[user], safe='')}@{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr log."""
        return self.workdir / "redis.log"

    @property
    def config_path(self) -> Path:
        """The generated ``redis.conf`` (ACL users; mode 0600)."""
        return self.workdir / "redis.conf"

    def persistence_args(self) -> list[str]:
        """AOF every second plus RDB snapshots, or neither."""
        if not self.persistence:
            return ["--save", "", "--appendonly", "no"]
        return [
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "3600 1 300 100 60 10000",
        ]

    def _write_config(self) -> Path:
        # Users go into a config file, not argv: the process list shows no password hash.
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("".join(f"{line}\n" for line in self._acl_lines))
        return self.config_path

    # -- lifecycle --------------------------------------------------------------------

    def client(self, **kwargs: Any) -> redis.Redis:
        """A new ``redis.Redis`` client for this server (``kwargs`` go to ``from_url``)."""
        return redis.Redis.from_url(self.url, **kwargs)

    def start(self) -> Self:
        """Start the server and wait until it answers (as this PID). No-op if already running."""
        if self.is_running:
            return self
        exe = shutil.which(self.executable)
        if exe is None:
            raise FileNotFoundError(
                f"'{self.executable}' not found in PATH; run scripts/bootstrap.sh "
                "(installs the Debian redis-server package)"
            )
        workdir = self.workdir
        argv = [
            exe,
            str(self._write_config()),
            "--port",
            str(self.port),
            "--bind",
            self.host,
            *self.persistence_args(),
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        self._proc = _process.spawn(argv, self.log_path, cwd=workdir)
        _process.register(id(self), self.stop)

        probe = redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            socket_connect_timeout=0.5,
            socket_timeout=0.5,
            retry=Retry(NoBackoff(), 0),  # we poll ourselves
        )
        try:

            def ready() -> bool:
                # INFO's process_id guards against another server already on this port;
                # `loading` is 1 while the AOF/RDB is read back (commands answer LOADING).
                try:
                    info = probe.info()
                except redis.RedisError:
                    return False
                return (
                    self._proc is not None
                    and info.get("process_id") == self._proc.pid
                    and info.get("loading") == 0
                )

            ok = _process.wait_until(ready, self.startup_timeout, alive=lambda: self.is_running)
        finally:
            probe.close()
        if not ok:
            self._start_failed(
                f"redis-server on {self.host}:{self.port}",
                f"did not become ready within {self.startup_timeout}s",
            )
        return self

    def kill(self) -> None:
        """SIGKILL the server (a crash: no shutdown save); the data directory stays. With
        ``appendfsync everysec`` writes acknowledged more than ~1 s before survive."""
        proc, self._proc = self._proc, None
        _process.unregister(id(self))
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        if proc is not None:
            proc.wait(timeout=30)

    def restart(self, *, kill: bool = False) -> Self:
        """Stop (SIGTERM, or SIGKILL with ``kill=True``) and start again: same port, users and
        data directory."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running else "stopped"
        return f"RedisServer({self.host}:{self.port}, {state})"
