"""The whole repository passes the static checks configured in pyproject.toml: `ruff check .`,
`ruff format --check .` and `mypy` over every Python package (tools pinned in the dev extra
and requirements.lock)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MYPY_TARGETS = ("stockstream", "dataflows", "services", "bench", "tests")


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m <args>` from the repository root, with the interpreter running the tests."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ruff_check_passes() -> None:
    proc = run_tool("ruff", "check", ".")
    assert proc.returncode == 0, f"ruff check . failed:\n{proc.stdout}{proc.stderr}"


def test_ruff_format_is_applied() -> None:
    """One layout, the formatter's: a diff shows what changed, not who formatted it."""
    proc = run_tool("ruff", "format", "--check", ".")
    assert proc.returncode == 0, f"run `ruff format .`:\n{proc.stdout}{proc.stderr}"


def test_mypy_passes() -> None:
    proc = run_tool("mypy", *MYPY_TARGETS)
    assert proc.returncode == 0, (
        f"mypy {' '.join(MYPY_TARGETS)} failed:\n{proc.stdout}{proc.stderr}"
    )
