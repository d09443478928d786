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

# pytest runs in the background so that a SIGTERM or SIGINT to this script (CI's time limit)
# reaches it: tests/conftest.py turns SIGTERM into an interrupt that tears every fixture
# down, stopping the servers and processes the tests started.
.venv/bin/python -m pytest "$@" &
pytest_pid=$!
trap 'kill -TERM "$pytest_pid" 2>/dev/null' TERM INT
rc=0
while true; do
    wait "$pytest_pid" && rc=0 || rc=$?
    # wait returns >128 when a trapped signal interrupted it: wait again for pytest's exit
    kill -0 "$pytest_pid" 2>/dev/null || break
done
trap - TERM INT
if ((rc == 5)); then
    echo "[test.sh] ERROR: pytest collected no tests (exit 5) for: $*" >&2
fi
exit "$rc"
