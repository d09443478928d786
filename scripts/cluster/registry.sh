#!/usr/bin/env bash
# Start the local image registry (Debian's docker-registry, distribution 2.8) on
# 127.0.0.1:5000 with its storage under $CACHE/registry, unless one already answers
# there. Idempotent. containerd pulls `localhost:5000/...` from it (a mirror in its
# config); buildah pushes to it with --tls-verify=false. Stop: scripts/cluster/down.sh
# (or `registry.sh stop`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

registry_ok() { curl -fsS -m 3 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

if [[ ${1:-start} == stop ]]; then
    stop_daemon registry
    exit 0
fi
if registry_ok; then
    log "registry answers on $REGISTRY_ADDR"
    exit 0
fi
[[ -x /usr/bin/docker-registry ]] || "$CLUSTER_SCRIPTS/install-packages.sh"
mkdir -p "$CLUSTER_DIR" "$CACHE/registry"
cat >"$CLUSTER_DIR/registry.yml" <<YAML
version: 0.1
log:
  level: warn
  fields: {service: registry}
storage:
  filesystem: {rootdirectory: $CACHE/registry}
  delete: {enabled: true}
http:
  addr: $REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
YAML
stop_daemon registry 5   # a stale record of ours (dead or hung)
start_daemon registry /usr/bin/docker-registry serve "$CLUSTER_DIR/registry.yml"
wait_for "registry on $REGISTRY_ADDR" 30 registry_ok \
    || { tail -n 20 "$LOG_DIR/registry.log" >&2; die "the registry did not answer on $REGISTRY_ADDR"; }
