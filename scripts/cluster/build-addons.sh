#!/usr/bin/env bash
# Build the cluster add-on binaries from Go modules into $CACHE/cluster-addons/bin:
#   pause                  (scripts/cluster/pause: the pod sandbox process, static)
#   coredns                v1.12.1, a main module of our own requiring github.com/coredns/coredns
#   local-path-provisioner v0.0.30 (rancher), the dynamic PV provisioner behind the
#                          default StorageClass
# All static (CGO_ENABLED=0). Idempotent (a stamp per binary); concurrent callers wait
# on a lock. Cold: about 2-4 min on 2 cores (module downloads included).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v go >/dev/null || die "Go is needed (Debian: apt-get install golang-go >= 1.24, or go.dev)"
mkdir -p "$ADDONS_BIN"
exec 9>"$ADDONS/.lock"
flock 9

stamped() { [[ -x $ADDONS_BIN/$1 && -f $ADDONS_BIN/.$1.stamp && "$(cat "$ADDONS_BIN/.$1.stamp")" == "$2" ]]; }
stamp() { echo "$2" >"$ADDONS_BIN/.$1.stamp"; }
export CGO_ENABLED=0

# pause: its source is in the repo; the stamp is its hash.
h="$(cat "$CLUSTER_SCRIPTS/pause/main.go" "$CLUSTER_SCRIPTS/pause/go.mod" | sha256sum | cut -c1-16)"
if ! stamped pause "$h"; then
    (cd "$CLUSTER_SCRIPTS/pause" && go build -trimpath -ldflags='-s -w' -o "$ADDONS_BIN/pause" .)
    stamp pause "$h"
    log "built pause"
fi

# CoreDNS: upstream's main package is `coredns.go` at the module root (package main
# with all plugins compiled in via core/plugin); a module of our own builds the same.
if ! stamped coredns "$COREDNS_VERSION"; then
    t0=$SECONDS
    mod="$ADDONS/coredns-module"
    rm -rf "$mod" && mkdir -p "$mod" && cd "$mod"
    cat >main.go <<'GO'
package main

import (
	_ "github.com/coredns/coredns/core/plugin" // every plugin of the upstream build
	"github.com/coredns/coredns/coremain"
)

func main() { coremain.Run() }
GO
    printf 'module stockstream.local/coredns\n\ngo 1.24\n\nrequire github.com/coredns/coredns %s\n' \
        "$COREDNS_VERSION" >go.mod
    go mod tidy >"$ADDONS/coredns-tidy.log" 2>&1 || { tail -n 20 "$ADDONS/coredns-tidy.log" >&2; die "go mod tidy (coredns) failed"; }
    go build -trimpath -ldflags='-s -w' -o "$ADDONS_BIN/coredns" . || die "go build coredns failed"
    stamp coredns "$COREDNS_VERSION"
    log "built coredns $COREDNS_VERSION in $((SECONDS - t0))s"
fi

# local-path-provisioner: its go.mod has no replace directives, so `go install` works.
if ! stamped local-path-provisioner "$LOCAL_PATH_VERSION"; then
    t0=$SECONDS
    GOBIN="$ADDONS_BIN" go install -trimpath -ldflags='-s -w' \
        "github.com/rancher/local-path-provisioner@$LOCAL_PATH_VERSION" \
        || die "go install local-path-provisioner failed"
    stamp local-path-provisioner "$LOCAL_PATH_VERSION"
    log "built local-path-provisioner $LOCAL_PATH_VERSION in $((SECONDS - t0))s"
fi
log "add-ons present in $ADDONS_BIN"
