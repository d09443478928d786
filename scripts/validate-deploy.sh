#!/usr/bin/env bash
# Offline validation of everything under deploy/, observability/, Dockerfile and
# skaffold.yaml (no cluster, no registry needed):
#   1. install kustomize into .cache/ if needed (scripts/install-kustomize.sh)
#   2. render every overlay into .cache/rendered/<overlay>.yaml
#   3. promtool: check the rules and configs, run the alert unit tests
#   4. pytest tests/deploy tests/observability (schemas via kubernetes-validate,
#      hardening, wiring, dashboards, logging, entrypoint, settings contract)
# Extra arguments go to pytest, e.g. scripts/validate-deploy.sh -k hardening -x
# Python: $PYTHON, else .venv/bin/python (scripts/bootstrap.sh builds it).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

say() { printf '[validate-deploy] %s\n' "$*" >&2; }
die() { printf '[validate-deploy] ERROR: %s\n' "$*" >&2; exit 1; }

python=${PYTHON:-$root/.venv/bin/python}
[ -x "$python" ] || die "no $python; run scripts/bootstrap.sh or set PYTHON"
command -v promtool >/dev/null || die "promtool not found; run scripts/bootstrap.sh (apt package prometheus)"

kustomize=$(scripts/install-kustomize.sh | tail -n 1)
say "kustomize: $kustomize ($("$kustomize" version 2>/dev/null | head -n 1))"

out=$root/.cache/rendered
mkdir -p "$out"
for dir in deploy/kustomize/overlays/*/; do
    overlay=$(basename "$dir")
    "$kustomize" build "$dir" > "$out/$overlay.yaml"
    say "rendered overlays/$overlay: $(grep -c '^kind:' "$out/$overlay.yaml") objects -> .cache/rendered/$overlay.yaml"
done

say "promtool check rules"
promtool check rules observability/prometheus/rules/*.yaml >/dev/null
say "promtool test rules"
promtool test rules observability/prometheus/tests/*_test.yaml >/dev/null
say "promtool check config prometheus.local.yml"
promtool check config observability/prometheus/prometheus.local.yml >/dev/null

say "pytest tests/deploy tests/observability"
exec "$python" -m pytest tests/deploy tests/observability "$@"
