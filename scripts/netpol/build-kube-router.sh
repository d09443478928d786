#!/usr/bin/env bash
# Build kube-router (its NetworkPolicy controller enforces NetworkPolicies with iptables +
# ipset) from the Go module proxy into $CACHE/netpol/bin/kube-router, and install the
# Debian `ipset` tool it calls. Idempotent: a stamp per version; prints the binary's path.
#   CACHE = ${STOCKSTREAM_CACHE:-${XDG_CACHE_HOME:-~/.cache}/stockstream}
set -euo pipefail

KUBE_ROUTER_VERSION=${KUBE_ROUTER_VERSION:-v2.1.0}
cache=${STOCKSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stockstream}
bin=$cache/netpol/bin
say() { printf '[build-kube-router] %s\n' "$*" >&2; }
die() { printf '[build-kube-router] ERROR: %s\n' "$*" >&2; exit 1; }

if ! command -v ipset >/dev/null; then
    command -v apt-get >/dev/null || die "ipset missing and no apt-get (install the ipset package)"
    say "installing the Debian package ipset"
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
    $sudo_ apt-get install -y -qq ipset >/dev/null 2>&1 \
        || { $sudo_ apt-get update -qq >/dev/null && $sudo_ apt-get install -y -qq ipset >/dev/null; } \
        || die "apt-get install ipset failed"
fi

mkdir -p "$bin"
if [[ -x $bin/kube-router && "$(cat "$bin/.kube-router.stamp" 2>/dev/null)" == "$KUBE_ROUTER_VERSION" ]]; then
    echo "$bin/kube-router"
    exit 0
fi
command -v go >/dev/null || die "Go is needed (Debian: golang-go >= 1.21)"
exec 9>"$cache/netpol/.lock"
flock 9
t0=$SECONDS
say "go install github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION"
CGO_ENABLED=0 GOBIN="$bin" go install -trimpath -ldflags='-s -w' \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@$KUBE_ROUTER_VERSION" \
    || die "go install kube-router failed"
echo "$KUBE_ROUTER_VERSION" >"$bin/.kube-router.stamp"
say "built kube-router $KUBE_ROUTER_VERSION in $((SECONDS - t0))s"
echo "$bin/kube-router"
