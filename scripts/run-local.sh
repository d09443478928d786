#!/usr/bin/env bash
# Run the whole pipeline on this machine: installs what it needs (scripts/bootstrap.sh), starts
# a local Redis and Kafka broker (or uses $REDIS_URL / $KAFKA_BOOTSTRAP_SERVERS), replays real
# market data, runs the dataflow as two processes and prints the live leaderboards until Ctrl-C.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/bootstrap.sh
exec .venv/bin/python -m dataflows.leaders.local "$@"
