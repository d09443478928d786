"""Run the leaders dataflow as several local processes (a Bytewax cluster on loopback).

Used by the local run and by the tests; in Kubernetes each pod is one such process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stockstream.embedded.ports import LOOPBACK, free_port


@dataclass
class LocalCluster:
    """`processes` dataflow processes, each `python -m dataflows.leaders` with its own
    `PROCESS_ID`; `env` holds the dataflow settings (`REDIS_URL`, `BOUNDED`, ...)."""

    env: Mapping[str, str]
    processes: int = 2
    workers_per_process: int = 1
    log_dir: Path | None = None
    addresses: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> LocalCluster:
        """Start every process (fresh ports the first time, the same ones on a restart)."""
        return self.start_with_env([{} for _ in range(self.processes)])

    def start_with_env(self, per_process: list[Mapping[str, str]]) -> LocalCluster:
        """Start every process with extra settings of its own (e.g. `METRICS_PORT`)."""
        if not self.addresses:
            self.addresses = [f"{LOOPBACK}:{free_port()}" for _ in range(self.processes)]
        self.procs = [self._spawn(index, extra) for index, extra in enumerate(per_process)]
        return self

    def _spawn(self, index: int, extra: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            **self.env,
            **(extra or {}),
            "WORKERS_PER_PROCESS": str(self.workers_per_process),
        }
        if self.processes > 1:
            env |= {"PROCESS_ID": str(index), "ADDRESSES": ";".join(self.addresses)}
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"dataflow-{index}.log", "ab")  # noqa: SIM115 - child owns it
        return subprocess.Popen(
            [sys.executable, "-m", "dataflows.leaders"],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,  # Ctrl-C reaches the parent, which stops us in order
        )

    def wait(self, timeout_s: float) -> list[int]:
        """Exit codes of every process (raises `subprocess.TimeoutExpired` if one hangs)."""
        return [proc.wait(timeout=timeout_s) for proc in self.procs]

    def kill(self, index: int, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` to one process by PID."""
        self.procs[index].send_signal(sig)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM every process still running, SIGKILL what is left after `timeout_s`."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of every process's log, for failure messages."""
        if self.log_dir is None:
            return ""
        parts = []
        for path in sorted(self.log_dir.glob("dataflow-*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"== {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
