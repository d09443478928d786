#!/usr/bin/env bash
# Bootstrap the machine (idempotent, fast when done) and run pytest from .venv.
#   ./scripts/test.sh                      # all tests under tests/
#   ./scripts/test.sh tests/embedded -q    # any pytest arguments
# Exits with pytest's exit code; "no tests collected" (5) counts as a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/bootstrap.sh

if (($# == 0)); then
    set -- tests
fi

rc=0
.venv/bin/python -m pytest "$@" || rc=$?
if ((rc == 5)); then
    echo "[test.sh] ERROR: pytest collected no tests (exit 5) for: $*" >&2
fi
exit "$rc"
