"""Container log files as a node's container runtime writes them, for the log-shipping tests.

containerd (through the CRI) captures a container's stdout and stderr and appends each line to
`/var/log/pods/<namespace>_<pod>_<uid>/<container>/0.log`, linked from
`/var/log/containers/<pod>_<namespace>_<container>-<container id>.log`, as

    <RFC 3339 time, nanoseconds> <stdout|stderr> <F|P> <line without its newline>

A line longer than `max_container_log_line_size` (containerd's setting, 16 KiB by default) is
written as several records: `P` (partial) for every piece but the last, `F` for the last.
`ContainerLogs.spawn` runs a process with its stdout/stderr written that way.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

CONTAINERD_MAX_LINE_BYTES = 16384


def cri_timestamp(ns: int) -> str:
    """`2026-11-29T23:22:02.648123456Z`: Go's RFC3339Nano in UTC (trailing zeros trimmed)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


def cri_records(stream: str, line: bytes, max_line_bytes: int, ns: int) -> list[bytes]:
    """The records of one output line (`line` without its newline): `P` pieces of
    `max_line_bytes` bytes, then the `F` rest."""
    stamp = cri_timestamp(ns).encode()
    pieces = [line[i : i + max_line_bytes] for i in range(0, len(line), max_line_bytes)] or [b""]
    return [
        b"%s %s %s %s\n" % (stamp, stream.encode(), b"F" if i == len(pieces) - 1 else b"P", piece)
        for i, piece in enumerate(pieces)
    ]


@dataclass
class ContainerProcess:
    """A process whose stdout/stderr go to its container log file; stopped by PID."""

    name: str
    proc: subprocess.Popen[bytes]
    path: Path
    pumps: list[threading.Thread]

    def wait(self, timeout_s: float) -> int:
        code = self.proc.wait(timeout=timeout_s)
        for pump in self.pumps:
            pump.join(timeout_s)
        return code

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM by PID, SIGKILL after `timeout_s`; waits for the log to be written."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.wait(timeout_s)

    def log_tail(self, lines: int = 30) -> str:
        text = self.path.read_text(errors="replace").splitlines()[-lines:]
        return f"== {self.name} ({self.path})\n" + "\n".join(text)


@dataclass
class ContainerLogs:
    """The container log folders of one node (`root` stands for `/var/log`)."""

    root: Path
    namespace: str = "stockstream"
    max_line_bytes: int = CONTAINERD_MAX_LINE_BYTES
    partial_records: int = 0  # P records written so far
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def containers(self) -> Path:
        """The folder node agents read (`/var/log/containers`)."""
        return self.root / "containers"

    def log_file(self, pod: str, container: str) -> Path:
        """Create the pod's log file and its /var/log/containers link; returns the file."""
        uid = uuid.uuid4()
        container_id = uuid.uuid4().hex + uuid.uuid4().hex
        path = self.root / "pods" / f"{self.namespace}_{pod}_{uid}" / container / "0.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        self.containers.mkdir(parents=True, exist_ok=True)
        link = self.containers / f"{pod}_{self.namespace}_{container}-{container_id}.log"
        link.symlink_to(path)
        return path

    def spawn(
        self,
        pod: str,
        container: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path | None = None,
    ) -> ContainerProcess:
        """Start `argv` with stdout and stderr written to the container's log file."""
        path = self.log_file(pod, container)
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        out = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by the last pump
        streams = [("stdout", proc.stdout), ("stderr", proc.stderr)]
        remaining = [len(streams)]
        pumps = [
            threading.Thread(
                target=self._pump,
                args=(name, pipe, out, remaining),
                name=f"cri-{pod}-{name}",
                daemon=True,
            )
            for name, pipe in streams
            if pipe is not None
        ]
        for pump in pumps:
            pump.start()
        return ContainerProcess(f"{pod}/{container}", proc, path, pumps)

    def _pump(self, stream: str, pipe: IO[bytes], out: IO[bytes], remaining: list[int]) -> None:
        try:
            for raw in pipe:
                records = cri_records(
                    stream, raw.rstrip(b"\n"), self.max_line_bytes, time.time_ns()
                )
                with self._lock:
                    out.write(b"".join(records))
                    self.partial_records += len(records) - 1
        finally:
            with self._lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    out.close()
