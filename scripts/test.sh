#!/usr/bin/env bash
# Bootstrap the machine (idempotent, fast when done) and run pytest from .venv.
#   ./scripts/test.sh                      # every test, in two concurrent groups (below)
#   ./scripts/test.sh tests/embedded -q    # any pytest arguments: one pytest, as given
# Exits with pytest's exit code (the first failing group's); "no tests collected" (5) counts as
# a failure.
#
# Every test, in two groups run at the same time: the tiers that need the Kubernetes cluster
# (its build and start, images, deploys: mostly waiting on pods and clocks) and all the others
# (local servers and pipelines). Each group is one pytest process with its own session
# fixtures; their lines are prefixed [cluster] and [local]. The full run's wall time is about
# the longer group's instead of the sum (tests/README.md has the measurements).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/bootstrap.sh

CLUSTER_TIERS=(tests/cluster tests/deploy tests/operated tests/userpath)

# wait_for <pid>: its exit status, waiting again when a trapped signal interrupted `wait`.
wait_for() {
    local rc=0
    while true; do
        wait "$1" && rc=0 || rc=$?
        kill -0 "$1" 2>/dev/null || break
    done
    return "$rc"
}

# pytest runs in the background so that a SIGTERM or SIGINT to this script (CI's time limit)
# reaches it: tests/conftest.py turns SIGTERM into an interrupt that tears every fixture down,
# stopping the servers and processes the tests started.
if (($# > 0)); then
    .venv/bin/python -m pytest "$@" &
    pytest_pid=$!
    trap 'kill -TERM "$pytest_pid" 2>/dev/null' TERM INT
    rc=0
    wait_for "$pytest_pid" || rc=$?
    trap - TERM INT
    if ((rc == 5)); then
        echo "[test.sh] ERROR: pytest collected no tests (exit 5) for: $*" >&2
    fi
    exit "$rc"
fi

status_dir="$(mktemp -d)"
trap 'rm -rf "$status_dir"' EXIT
ignores=()
for tier in "${CLUSTER_TIERS[@]}"; do ignores+=("--ignore=$tier"); done

# run_group <name> <pytest args...>: pytest in its own process group, its lines prefixed; the
# exit status goes to $status_dir/<name>.
run_group() {
    local name=$1
    shift
    (
        set +e
        .venv/bin/python -m pytest "$@" 2>&1 | sed -u "s/^/[$name] /"
        echo "${PIPESTATUS[0]}" >"$status_dir/$name"
    ) &
    pids+=($!)
}

# A signal to this script must reach pytest itself (not only the subshell that runs it and its
# `sed`): the groups' pytest processes, found by their parent subshells.
pids=()
stop_all() {
    for pid in "${pids[@]}"; do
        pkill -TERM -P "$pid" -f "pytest" 2>/dev/null || true
    done
}
trap stop_all TERM INT
run_group cluster "${CLUSTER_TIERS[@]}" --durations=12
run_group local tests "${ignores[@]}" --durations=12
for pid in "${pids[@]}"; do wait_for "$pid" || true; done
trap - TERM INT

rc=0
for name in cluster local; do
    group_rc="$(cat "$status_dir/$name" 2>/dev/null || echo 1)"
    echo "[test.sh] group $name: pytest exit $group_rc"
    if ((group_rc == 5)); then
        echo "[test.sh] ERROR: pytest collected no tests (exit 5) in group $name" >&2
    fi
    if ((rc == 0 && group_rc != 0)); then rc=$group_rc; fi
done
exit "$rc"
