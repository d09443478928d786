#!/usr/bin/env bash
# Install etcd (Debian's etcd-server) for the operator's fast test tier: a kube-apiserver
# alone needs an etcd. Idempotent: does nothing when `etcd` is on PATH. Prints its path.
set -euo pipefail
log() { printf '[install-etcd] %s\n' "$*" >&2; }
if ! command -v etcd >/dev/null 2>&1; then
    command -v apt-get >/dev/null || { log "ERROR: etcd missing and apt-get unavailable"; exit 1; }
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    log "installing etcd-server"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends etcd-server >&2
    # Debian's postinst may start a packaged etcd on 2379 where an init system runs; the tests
    # never use it (they start their own on free ports).
fi
command -v etcd
