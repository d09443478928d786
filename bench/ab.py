"""Before/after in one run: the same bench command against the working tree and a git ref,
alternated, repeated, medians and spread of the figures it prints.

The ref's tree is exported (`git archive`) to a temporary directory and the working tree's
`bench/` is copied over it, so both sides run the same bench code and differ only in the
library under test. Runs alternate (ref, tree, ref, tree, ...) so that the machine's load
drifts over both alike; on a loaded machine compare the CPU-time figures first.

    .venv/bin/python -m bench.ab --ref HEAD~1 --runs 5 --figure 'KB=([0-9.]+) KB/symbol' \\
        -- bench.memory --no-write --symbols 10000
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import REPO


def export(ref: str, into: Path) -> Path:
    """The tree of `ref` with the working tree's `bench/` on top."""
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    shutil.rmtree(into / "bench")
    shutil.copytree(
        REPO / "bench", into / "bench", ignore=shutil.ignore_patterns("__pycache__", "results")
    )
    (into / "bench" / "results").mkdir()
    (into / ".cache").symlink_to(REPO / ".cache")  # Kafka and Flink jars, venvs
    return into


def figures(output: str, patterns: dict[str, re.Pattern[str]]) -> dict[str, float]:
    out = {}
    for name, pattern in patterns.items():
        match = pattern.search(output)
        if match:
            out[name] = float(match.group(1).replace(",", ""))
    return out


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    median = statistics.median(values)
    return f"{median:,.4g} (min {min(values):,.4g}, max {max(values):,.4g}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="HEAD")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--figure",
        action="append",
        default=[],
        help="NAME=REGEX with one group: a number printed by the bench",
    )
    parser.add_argument(
        "command", nargs=argparse.REMAINDER, help="-- module args... (run as python -m)"
    )
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"]
    patterns = {
        spec.split("=", 1)[0]: re.compile(spec.split("=", 1)[1], re.MULTILINE)
        for spec in args.figure
    }
    seen: dict[str, dict[str, list[float]]] = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": export(args.ref, Path(tmp)), "after": REPO}
        for run in range(args.runs):
            for side, tree in trees.items():
                proc = subprocess.run(
                    [sys.executable, "-m", *command],
                    cwd=tree,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    raise SystemExit(f"{side} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
                got = figures(proc.stdout, patterns)
                print("\n".join(f"  | {line}" for line in proc.stdout.splitlines()[-4:]))
                print(
                    f"run {run + 1} {side:6s} "
                    + ", ".join(f"{k}={v:,.4g}" for k, v in got.items()),
                    flush=True,
                )
                for name, value in got.items():
                    seen[side].setdefault(name, []).append(value)
    print(f"== {' '.join(command)}; before = {args.ref}, after = working tree")
    for name in patterns:
        before, after = seen["before"].get(name, []), seen["after"].get(name, [])
        ratio = (
            statistics.median(after) / statistics.median(before)
            if before and after and statistics.median(before)
            else float("nan")
        )
        print(f"{name}: before {summary(before)}; after {summary(after)}; after/before {ratio:.3f}")


if __name__ == "__main__":
    main()
