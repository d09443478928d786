"""Shared helpers for the embedded servers: spawning, stopping by PID, log tails."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

# Servers still running at interpreter exit are stopped (best effort), so that an
# aborted test session or local run does not leave orphan redis/java processes.
_registry_lock = threading.Lock()
_running: dict[int, Callable[[], None]] = {}


def _stop_all_at_exit() -> None:
    with _registry_lock:
        stoppers = list(_running.values())
    for stop in stoppers:
        with contextlib.suppress(Exception):  # best effort at exit
            stop()


atexit.register(_stop_all_at_exit)


def register(key: int, stop: Callable[[], None]) -> None:
    """Remember a running server so it is stopped at interpreter exit."""
    with _registry_lock:
        _running[key] = stop


def unregister(key: int) -> None:
    """Forget a server registered with :func:`register`."""
    with _registry_lock:
        _running.pop(key, None)


class ServerStartError(RuntimeError):
    """An embedded server did not come up; the message contains its log tail."""


def spawn(
    argv: Sequence[str],
    log_path: Path,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdout+stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=str(cwd),
            env=env,
            start_new_session=True,  # keep Ctrl-C of the parent from reaching the server
        )
    finally:
        log_file.close()


def pid_alive(pid: int) -> bool:
    """True if a process with ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Stop ``proc`` by PID: SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
    return proc.wait(timeout=30)


def log_tail(path: Path, lines: int = 40) -> str:
    """Last ``lines`` lines of a log file (or a note that it does not exist)."""
    try:
        data = path.read_bytes()
    except OSError:
        return f"(no log at {path})"
    text = data[-64_000:].decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    interval: float = 0.1,
    alive: Callable[[], bool] | None = None,
) -> bool:
    """Poll ``predicate`` until true (-> True), ``timeout`` elapses or ``alive()`` is false
    (-> False)."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and not alive():
            return False
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
