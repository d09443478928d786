"""Run every benchmark in turn (each in its own process) and rebuild bench/results/latest.md.

    .venv/bin/python -m bench.run_all [--quick] [--only window_engine,memory]

`--quick` runs each on a small input (minutes, not tens of minutes): a check that the
scripts work, not figures to publish.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.common import REPO, RESULTS_DIR, SECTIONS

QUICK = {
    "window_engine": ["--symbols", "50,500", "--ticks", "200000", "--bytewax-ticks", "10000"],
    "end_to_end": ["--ticks", "200000"],
    "latency": ["--seconds", "30", "--probe-s", "10"],
    "holdback": ["--ticks", "100000"],
    "memory": ["--symbols", "2000"],
    "quix_peer": ["--ticks", "50000"],
    "flink_peer": ["--ticks", "100000", "--parallelism", "1"],
    "redis_sink": ["--windows", "50"],
}


MODULES = {"quix": "quix_peer", "flink": "flink_peer"}  # results section -> bench module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(SECTIONS))
    args = parser.parse_args()
    failed = []
    for name in args.only.split(","):
        started = time.perf_counter()
        module = MODULES.get(name, name)
        extra = QUICK.get(module, []) if args.quick else []
        code = subprocess.call([sys.executable, "-m", f"bench.{module}", *extra], cwd=REPO)
        print(
            f"-- bench.{name}: exit {code} in {time.perf_counter() - started:.0f} s\n", flush=True
        )
        if code:
            failed.append(name)
    print(f"results: {RESULTS_DIR / 'latest.md'}" + (f"; failed: {failed}" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
