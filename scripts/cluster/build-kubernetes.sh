#!/usr/bin/env bash
# Build the Kubernetes binaries of the local test cluster from Go modules (no prebuilt
# downloads): kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy
# and kubectl, at KUBERNETES_VERSION, into $STOCKSTREAM_CACHE/kubernetes/<version>/bin.
#
# `go install k8s.io/kubernetes/cmd/...@vX` is refused (kubernetes' go.mod has replace
# directives), so this writes a small main module of its own that requires k8s.io/kubernetes
# and replaces every staging module by its published v0.<minor>.<patch>, with a tools.go
# that blank-imports the commands. Idempotent: a finished build is reused (stamp file);
# concurrent callers wait on a lock. About 6-9 min on 2 cores with empty caches.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.34.3}"
CACHE="${STOCKSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stockstream}"
OUT="$CACHE/kubernetes/$KUBERNETES_VERSION"
BIN="$OUT/bin"
COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

log() { printf '[build-kubernetes] %s\n' "$*" >&2; }
die() { printf '[build-kubernetes] ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "Go is needed (Debian: apt-get install golang-go >= 1.24, or go.dev)"
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9

stamp="$KUBERNETES_VERSION ${COMMANDS[*]}"
if [[ -f $BIN/.stamp && "$(cat "$BIN/.stamp")" == "$stamp" ]]; then
    log "binaries present in $BIN"
    exit 0
fi

t0=$SECONDS
mod="$OUT/module"
rm -rf "$mod" && mkdir -p "$mod"
cd "$mod"
go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" >/dev/null \
    || die "cannot download k8s.io/kubernetes@$KUBERNETES_VERSION from the Go module proxy"
upstream_mod="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod"
commit="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | sed -n 's/.*"Hash": "\([0-9a-f]*\)".*/\1/p')"
staging_version="v0.${KUBERNETES_VERSION#v1.}"
major_minor="${KUBERNETES_VERSION#v}"; major="${major_minor%%.*}"; rest="${major_minor#*.}"; minor="${rest%%.*}"

{
    echo "module stockstream.local/kubernetes-build"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    # Every staging module kubernetes replaces by ./staging/... -> its published version.
    grep -E '^\s+k8s\.io/[^ ]+ => \./staging/' "$upstream_mod" | awk -v v="$staging_version" \
        '{print "replace " $1 " => " $1 " " v}'
} >go.mod
{
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for c in "${COMMANDS[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ")"
} >tools.go
log "resolving modules (k8s.io/kubernetes $KUBERNETES_VERSION, staging $staging_version)"
GOFLAGS="-mod=mod -tags=tools" go mod tidy >/dev/null 2>"$OUT/tidy.log" \
    || { tail -n 30 "$OUT/tidy.log" >&2; die "go mod tidy failed"; }

pkgs=()
for c in "${COMMANDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitCommit=$commit -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done
log "building ${COMMANDS[*]} (several minutes on 2 cores)"
mkdir -p "$BIN.tmp"
CGO_ENABLED=0 go build -trimpath -tags=tools -ldflags="$ldflags" -o "$BIN.tmp/" "${pkgs[@]}" \
    || die "go build failed"
echo "$stamp" >"$BIN.tmp/.stamp"
rm -rf "$BIN" && mv "$BIN.tmp" "$BIN"
log "built into $BIN in $((SECONDS - t0))s"
