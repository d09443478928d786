#!/usr/bin/env bash
# Build Filebeat OSS (the Apache-2.0 part of elastic/beats, no x-pack) from the Go module
# proxy into $STOCKSTREAM_CACHE/filebeat/<version>/filebeat and print the binary's path as the
# last line on stdout. The log-search test (tests/observability/test_log_search.py) ships the
# pipeline's container logs into OpenSearch with it: its `container` input reads CRI log files
# exactly as a node agent does. Fluent Bit, the shipper of the Kubernetes manifests, is not
# obtainable here (no Debian package, no module).
#
# Why 7.12.1: the last Filebeat whose Elasticsearch output talks to OpenSearch (with
# `compatibility.override_main_response_version`); later ones need a `_license` endpoint.
# Why reflect2 v1.0.2: 7.12.1 pins v1.0.1, which crashes on map iteration with Go >= 1.18.
# Idempotent (stamp file), concurrent callers wait on a lock. About 7 min on 2 cores cold.
set -euo pipefail

FILEBEAT_VERSION="${FILEBEAT_VERSION:-v7.12.1}"
CACHE="${STOCKSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stockstream}"
OUT="$CACHE/filebeat/$FILEBEAT_VERSION"
BIN="$OUT/filebeat"
STAMP="$FILEBEAT_VERSION reflect2@v1.0.2 oss"

log() { printf '[install-filebeat] %s\n' "$*" >&2; }
die() { printf '[install-filebeat] ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "Go is needed (Debian: apt-get install golang-go, or go.dev)"
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9

if [[ -x $BIN && -f $OUT/.stamp && "$(cat "$OUT/.stamp")" == "$STAMP" ]]; then
    log "filebeat present: $BIN"
    echo "$BIN"
    exit 0
fi

t0=$SECONDS
log "downloading github.com/elastic/beats/v7@$FILEBEAT_VERSION from the Go module proxy"
dir="$(go mod download -json "github.com/elastic/beats/v7@$FILEBEAT_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
[[ -d $dir ]] || die "cannot download github.com/elastic/beats/v7@$FILEBEAT_VERSION"

# The module cache is read-only: build in a writable copy.
src="$OUT/src"
rm -rf "$src"
cp -r "$dir" "$src"
chmod -R u+w "$src"
cd "$src"
log "pinning github.com/modern-go/reflect2@v1.0.2 (v1.0.1 crashes on current Go)"
GOFLAGS=-mod=mod go get github.com/modern-go/reflect2@v1.0.2 >"$OUT/get.log" 2>&1 \
    || { tail -n 30 "$OUT/get.log" >&2; die "go get reflect2 failed"; }
log "building ./filebeat (OSS, several minutes on 2 cores)"
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w" -o "$BIN.tmp" ./filebeat \
    >"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log" >&2; die "go build ./filebeat failed"; }
"$BIN.tmp" version >/dev/null || die "the built filebeat does not run"
mv "$BIN.tmp" "$BIN"
echo "$STAMP" >"$OUT/.stamp"
cd "$OUT" && rm -rf "$src"
log "built $BIN in $((SECONDS - t0))s"
echo "$BIN"
