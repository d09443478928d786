#!/usr/bin/env bash
# Build Prometheus (the server and promtool) with Kubernetes service discovery from the Go
# module proxy into the cache (idempotent) and print the directory holding both binaries as
# the last line on stdout.
#
#   scripts/install-prometheus.sh
#
# Why: Debian's prometheus (2.42) is built without kubernetes_sd_configs, so the in-cluster
# configuration users run (observability/prometheus/prometheus.yml, with prom/prometheus)
# could not run as is on the project's test cluster. This builds the same release as the
# image users pull (deploy/kustomize/components/monitoring/prometheus.yaml), keeping only the
# Kubernetes, file and HTTP discovery (Prometheus' own build tags `remove_all_sd` and
# `enable_kubernetes_sd`): about 5 minutes on 2 cores with empty Go caches, then cached by
# version and tags. deploy/images/build.sh puts the server into the test cluster's image.
#
# Environment: STOCKSTREAM_CACHE (default ~/.cache/stockstream).
set -euo pipefail

version=3.16.0       # prom/prometheus:v3.16.0; Go module version v0.316.0
module_version=v0.316.0
tags=remove_all_sd,enable_kubernetes_sd
cache="${STOCKSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stockstream}"
dir="$cache/prometheus/$version-${tags//,/-}"

say() { echo "install-prometheus: $*" >&2; }

built() {
    [ -x "$dir/prometheus" ] && [ -x "$dir/promtool" ] \
        && "$dir/prometheus" --version 2>/dev/null | grep -q "version $version "
}

if ! built; then
    command -v go >/dev/null || { say "go is needed (the Go toolchain builds Prometheus)"; exit 1; }
    mkdir -p "$(dirname "$dir")"
    exec 9>"$(dirname "$dir")/.lock"
    flock 9
    if ! built; then
        t0=$SECONDS
        tmp=$(mktemp -d "$(dirname "$dir")/.build.XXXXXX")
        trap 'rm -rf "$tmp"' EXIT
        stamp="-X github.com/prometheus/common/version.Version=$version"
        stamp+=" -X github.com/prometheus/common/version.Branch=release"
        stamp+=" -X github.com/prometheus/common/version.BuildUser=stockstream"
        say "building prometheus and promtool $version ($tags) into $dir"
        GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -tags "$tags" -ldflags "-s -w $stamp" \
            "github.com/prometheus/prometheus/cmd/prometheus@$module_version" \
            "github.com/prometheus/prometheus/cmd/promtool@$module_version" >&2
        rm -rf "$dir"
        mv "$tmp" "$dir"
        trap - EXIT
        built || { say "the built prometheus does not report version $version"; exit 1; }
        say "built in $((SECONDS - t0))s"
    fi
fi
echo "$dir"
