"""Quix Streams peer -- NOT MEASURED YET (see BENCHMARKS.md, "Quix Streams").

Quix Streams 3.28.1 is installed by `bench/setup.sh` into its own venv (.cache/venv-quix):
its requirements (confluent-kafka<2.13, pydantic<2.14, pydantic-settings<2.16) conflict with
the project's pins, so it cannot share .venv and has to run as a separate process against
the same broker and topic. The Quix application (hopping windows 1/5/15 min every 10 s,
mean per symbol, top-3) and the result check against our engine are still to be written.
This script only reports whether the Quix venv is ready.

    .venv/bin/python -m bench.quix_peer
"""

from __future__ import annotations

import subprocess

from bench.common import QUIX_PYTHON, print_header, write_results


def quix_version() -> str | None:
    if not QUIX_PYTHON.is_file():
        return None
    proc = subprocess.run(
        [str(QUIX_PYTHON), "-c", "import quixstreams; print(quixstreams.__version__)"],
        capture_output=True, text=True, check=False,
    )
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def main(argv: list[str] | None = None) -> None:
    version = quix_version()
    print_header("quix_peer", {"quix_python": QUIX_PYTHON, "quixstreams": version})
    status = (f"quixstreams {version} installed in a separate venv; comparison not written yet"
              if version else "quixstreams venv missing: run bench/setup.sh")
    print(f"quix_peer: NOT MEASURED ({status})")
    write_results("quix_peer", [("not measured", status)], ("ratio ours/Quix", "status"),
                  notes=["See BENCHMARKS.md, section Quix Streams."])


if __name__ == "__main__":
    main()
