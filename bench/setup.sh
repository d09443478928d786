#!/usr/bin/env bash
# Idempotent: install the bench extra into .venv (after scripts/bootstrap.sh) and Quix Streams
# into its own venv, .cache/venv-quix (its pins conflict with the project's, see pyproject.toml).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
[[ -x .venv/bin/python ]] || ./scripts/bootstrap.sh
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,bench]' -c requirements.lock
QUIX="$ROOT/.cache/venv-quix"
if ! "$QUIX/bin/python" -c 'import quixstreams' 2>/dev/null; then
    base="$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')"
    "$base/bin/python3" -m venv "$QUIX"
fi
"$QUIX/bin/python" -m pip install -q --disable-pip-version-check quixstreams==3.28.1 psutil \
    -c bench/quix-requirements.lock
echo "bench: .venv has psutil+pyinstrument; Quix Streams $("$QUIX/bin/python" -c 'import quixstreams; print(quixstreams.__version__)' 2>/dev/null) in $QUIX"
# Apache Flink 2.2 jars (Maven Central, bench/flink/pom.xml) and the bench's Flink SQL job
.venv/bin/python -c 'from bench.flink_peer import build_flink; build_flink()'
echo "bench: Flink jars in .cache/flink/libs, job class in .cache/flink/classes"
