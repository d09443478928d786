"""A real OpenSearch node on loopback for tests: started and stopped by PID, data in a temp dir.

The distribution comes from Maven Central through `scripts/install-opensearch.sh` (cached under
`$STOCKSTREAM_CACHE`). OpenSearch refuses to run as root, so as root the node runs as the
unprivileged user that script creates (`setpriv`), from a copy of the distribution inside the
node's own temp dir (the cache under root's home is not readable by that user).

    with OpenSearchServer(install_opensearch()) as node:
        node.request("GET", "/_cluster/health")
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx

from stockstream.embedded import _process
from stockstream.embedded._server import EmbeddedServer
from stockstream.embedded.ports import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = REPO / "scripts/install-opensearch.sh"


@dataclass(frozen=True)
class OpenSearchInstall:
    """An unpacked distribution and the user that runs it."""

    home: Path
    user: str


def install_opensearch() -> OpenSearchInstall:
    """Run the project's install script (fast when done) and return what it installed."""
    proc = subprocess.run([str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{INSTALL_SCRIPT.name} failed:\n{proc.stderr[-4000:]}")
    home, user = proc.stdout.strip().splitlines()[-1].split(" ")
    return OpenSearchInstall(Path(home), user)


def java_home() -> Path:
    """The JDK of `java` on PATH (OpenSearch's integ-test zip bundles none)."""
    java = shutil.which("java")
    if java is None:
        raise FileNotFoundError("java not found on PATH; run scripts/bootstrap.sh")
    return Path(java).resolve().parents[1]


class OpenSearchServer(EmbeddedServer):
    """A single-node OpenSearch bound to 127.0.0.1 on free ports, heap `heap_mb`."""

    workdir_prefix = "stockstream-opensearch-"

    def __init__(
        self,
        install: OpenSearchInstall,
        *,
        heap_mb: int = 512,
        workdir: Path | str | None = None,
        startup_timeout: float = 240.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.install = install
        self.heap_mb = heap_mb
        self.host = LOOPBACK
        self.port = free_port()
        self.transport_port = free_port()
        self.startup_timeout = startup_timeout
        super().__init__(workdir, stop_timeout)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "opensearch.out"

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """One REST call; returns the decoded JSON answer, raises on an HTTP error status."""
        response = httpx.request(
            method, self.url + path, json=body, params=params or None, timeout=60.0
        )
        if response.is_error:
            raise httpx.HTTPStatusError(
                f"{method} {path} -> {response.status_code}: {response.text[:2000]}",
                request=response.request,
                response=response,
            )
        return response.json()

    def _prepare(self) -> Path:
        """Copy the distribution into the workdir once, write the node's config, hand the
        workdir to the user that runs the node. Returns the node's OPENSEARCH_HOME."""
        home = self.workdir / "home"
        if not home.exists():
            shutil.copytree(self.install.home, home, symlinks=True)
        for sub in ("data", "logs", "tmp"):
            (self.workdir / sub).mkdir(exist_ok=True)
        (home / "config/opensearch.yml").write_text(
            "cluster.name: stockstream-test\n"
            "node.name: node-0\n"
            f"network.host: {self.host}\n"
            f"http.port: {self.port}\n"
            f"transport.port: {self.transport_port}\n"
            "discovery.type: single-node\n"
            f"path.data: {self.workdir / 'data'}\n"
            f"path.logs: {self.workdir / 'logs'}\n"
            # A shared test machine's disk may be fuller than the default watermarks.
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
        )
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.install.user)
            for path in [self.workdir, *self.workdir.rglob("*")]:
                os.lchown(path, entry.pw_uid, entry.pw_gid)
        return home

    def start(self) -> Self:
        """Start the node and wait until it answers as this PID with a yellow/green cluster."""
        if self.is_running:
            return self
        home = self._prepare()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "OPENSEARCH_JAVA_HOME": str(java_home()),
            "OPENSEARCH_PATH_CONF": str(home / "config"),
            "OPENSEARCH_TMPDIR": str(self.workdir / "tmp"),
            "OPENSEARCH_JAVA_OPTS": f"-Xms{self.heap_mb}m -Xmx{self.heap_mb}m",
        }
        argv = [str(home / "bin/opensearch")]
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.install.user)
            argv = [
                "setpriv",
                f"--reuid={entry.pw_uid}",
                f"--regid={entry.pw_gid}",
                "--clear-groups",
                "--",
                *argv,
            ]
        # setpriv and bin/opensearch exec: the PID is the JVM's.
        self._proc = _process.spawn(argv, self.log_path, cwd=home, env=env)
        _process.register(id(self), self.stop)
        if not _process.wait_until(
            self._ready, self.startup_timeout, interval=0.5, alive=lambda: self.is_running
        ):
            self._start_failed(
                f"OpenSearch on {self.url}", f"did not become ready within {self.startup_timeout}s"
            )
        return self

    def _ready(self) -> bool:
        try:
            nodes = httpx.get(f"{self.url}/_nodes/_local/process", timeout=5.0).json()
            pids = [node["process"]["id"] for node in nodes["nodes"].values()]
            if self._proc is None or pids != [self._proc.pid]:
                return False  # another server on this port
            health = httpx.get(f"{self.url}/_cluster/health", timeout=5.0).json()
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return health.get("status") in ("yellow", "green")

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running else "stopped"
        return f"OpenSearchServer({self.url}, {state})"
