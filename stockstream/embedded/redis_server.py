"""A real ``redis-server`` on a free loopback port, for local runs and tests."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from stockstream.embedded import _process
from stockstream.embedded._server import EmbeddedServer
from stockstream.embedded.ports import LOOPBACK, free_port

__all__ = ["RedisServer"]


class RedisServer(EmbeddedServer):
    workdir_prefix = "stockstream-redis-"

    """A throw-away ``redis-server`` process (no persistence) bound to 127.0.0.1.

    Usage::

        with RedisServer() as server:
            client = redis.Redis.from_url(server.url)

    ``start()``/``stop()`` may be called repeatedly; the port, password and working
    directory are kept between them. ``close()`` (or leaving the ``with`` block) stops the
    server and deletes the working directory if this object created it.
    """

    def __init__(
        self,
        port: int | None = None,
        password: str | None = None,
        *,
        executable: str = "redis-server",
        workdir: Path | str | None = None,
        startup_timeout: float = 15.0,
        stop_timeout: float = 10.0,
    ) -> None:
        """Configure (but do not start) a server; ``port=None`` picks a free port."""
        self.host: str = LOOPBACK
        self.port: int = port if port is not None else free_port()
        self.password: str | None = password
        self.executable = executable
        self.startup_timeout = startup_timeout
        super().__init__(workdir, stop_timeout)

    # -- properties -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` (``redis://:PASSWORD@...`` when a password is set)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        """The server's combined stdout/stderr log."""
        return self.workdir / "redis.log"

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
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--logfile",
            "",
        ]
        if self.password:
            argv += ["--requirepass", self.password]
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
                # INFO's process_id guards against another server already on this port.
                try:
                    info = probe.info("server")
                except redis.RedisError:
                    return False
                return self._proc is not None and info.get("process_id") == self._proc.pid

            ok = _process.wait_until(ready, self.startup_timeout, alive=lambda: self.is_running)
        finally:
            probe.close()
        if not ok:
            self._start_failed(f"redis-server on {self.host}:{self.port}",
                               f"did not become ready within {self.startup_timeout}s")
        return self

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running else "stopped"
        return f"RedisServer({self.host}:{self.port}, {state})"
