"""A real Filebeat (OSS 7.12.1, built by `scripts/install-filebeat.sh`) shipping container log
files with the project's `observability/logging/filebeat.yml`; started and stopped by PID.

    with Filebeat(install_filebeat(), {"ES_URL": node.url, ...}) as beat:
        ...
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import httpx

from stockstream.embedded import _process
from stockstream.embedded._server import EmbeddedServer
from stockstream.embedded.ports import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = REPO / "scripts/install-filebeat.sh"
CONFIG = REPO / "observability/logging/filebeat.yml"


def install_filebeat() -> Path:
    """Build (once, cached) and return the Filebeat binary."""
    proc = subprocess.run([str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{INSTALL_SCRIPT.name} failed:\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


class Filebeat(EmbeddedServer):
    """Filebeat with `config` and the variables it reads in `env`; registry in a temp dir.
    Its monitoring endpoint (`/stats`) listens on a free loopback port."""

    workdir_prefix = "stockstream-filebeat-"

    def __init__(
        self,
        binary: Path,
        env: Mapping[str, str],
        *,
        config: Path = CONFIG,
        workdir: Path | str | None = None,
        startup_timeout: float = 120.0,
        stop_timeout: float = 20.0,
    ) -> None:
        self.binary = binary
        self.env = dict(env)
        self.config = config
        self.http_port = free_port()
        self.startup_timeout = startup_timeout
        super().__init__(workdir, stop_timeout)

    @property
    def log_path(self) -> Path:
        return self.workdir / "filebeat.log"

    @property
    def stats_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}/stats"

    def stats(self) -> dict:
        """libbeat's counters (`libbeat.output.events.acked`, `...failed`, ...)."""
        return dict(httpx.get(self.stats_url, timeout=5.0).json())

    def start(self) -> Self:
        if self.is_running:
            return self
        argv = [
            str(self.binary),
            "-e",
            "-c",
            str(self.config),
            # A checkout may be group-writable; the config holds no secrets.
            "--strict.perms=false",
            "--path.home",
            str(self.workdir),
            "--path.data",
            str(self.workdir / "data"),
            "--path.logs",
            str(self.workdir / "logs"),
            "-E",
            "http.enabled=true",
            "-E",
            f"http.host={LOOPBACK}",
            "-E",
            f"http.port={self.http_port}",
        ]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.workdir), **self.env}
        self._proc = _process.spawn(argv, self.log_path, cwd=self.workdir, env=env)
        _process.register(id(self), self.stop)

        def ready() -> bool:
            try:
                return "libbeat" in self.stats()
            except (httpx.HTTPError, ValueError):
                return False

        if not _process.wait_until(
            ready, self.startup_timeout, interval=0.5, alive=lambda: self.is_running
        ):
            self._start_failed(
                f"filebeat ({self.binary})",
                f"did not serve {self.stats_url} within {self.startup_timeout}s",
            )
        return self

    def log_tail(self, lines: int = 40) -> str:
        return _process.log_tail(self.log_path, lines)
