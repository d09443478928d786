"""The benchmark scripts must not rot: run the window-engine bench on a tiny input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_window_engine_bench_prints_a_ratio() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.window_engine",
            "--symbols",
            "8",
            "--ticks",
            "4000",
            "--bytewax-ticks",
            "1000",
            "--no-write",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"^ratio symbols=8: [0-9.]+x", proc.stdout, re.MULTILINE), proc.stdout
    assert "machine: cpu=" in proc.stdout
