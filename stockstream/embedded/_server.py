"""What every embedded server shares: a working directory, a child process stopped by PID."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Self

from stockstream.embedded import _process


class EmbeddedServer(ABC):
    """A server process on loopback with its own working directory (a temp dir unless given)."""

    workdir_prefix = "stockstream-"

    def __init__(self, workdir: str | Path | None, stop_timeout: float) -> None:
        self.stop_timeout = stop_timeout
        self._own_workdir = workdir is None
        self._workdir: Path | None = Path(workdir) if workdir is not None else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def workdir(self) -> Path:
        """Directory holding the server's data and log (created on demand)."""
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=self.workdir_prefix))
        self._workdir.mkdir(parents=True, exist_ok=True)
        return self._workdir

    @property
    def pid(self) -> int | None:
        """PID of the running server process, ``None`` when not started."""
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        """True while the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @abstractmethod
    def start(self) -> Self:
        """Start the server and wait until it answers."""

    def _start_failed(self, what: str, not_ready: str) -> NoReturn:
        """Stop what was started and raise with the server's log tail."""
        died = not self.is_running
        self.stop()
        raise _process.ServerStartError(
            f"{what} {'exited' if died else not_ready}. "
            f"Log {self.log_path}:\n{_process.log_tail(self.log_path)}"
        )

    @property
    @abstractmethod
    def log_path(self) -> Path:
        """The server's combined stdout/stderr log."""

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server by PID (SIGTERM, then SIGKILL after ``timeout`` s); keeps its data.
        Idempotent."""
        proc, self._proc = self._proc, None
        _process.unregister(id(self))
        if proc is not None:
            _process.terminate(proc, self.stop_timeout if timeout is None else timeout)

    def close(self) -> None:
        """Stop the server and delete the working directory if it was a temp dir."""
        self.stop()
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
