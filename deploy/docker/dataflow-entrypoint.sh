#!/bin/sh
# Entrypoint of one process of the Bytewax "leaders" dataflow cluster.
#
# Runs in every pod of the `dataflow` StatefulSet: derives this process's id
# from the pod ordinal (the trailing "-<n>" of POD_NAME / the hostname), builds
# the cluster's address list from DATAFLOW_REPLICAS and the pods' stable DNS
# names under the headless Service, exports them as PROCESS_ID / ADDRESSES
# (read by dataflows.leaders.settings) and execs the dataflow runner,
# `python -m dataflows.leaders` (or the command given as arguments).
#
# The runner serves /metrics, /healthz, /readyz on METRICS_PORT and, when
# RECOVERY_DIR is set, creates RECOVERY_PARTITIONS recovery partitions in an
# empty directory before joining the cluster.
#
# Environment (defaults in brackets):
#   DATAFLOW_REPLICAS     processes in the cluster; MUST equal the
#                         StatefulSet's spec.replicas                        [1]
#   DATAFLOW_PORT         Bytewax (timely) cluster port                   [2101]
#   DATAFLOW_STATEFULSET  StatefulSet name, pods are <name>-<ordinal> [dataflow]
#   DATAFLOW_SERVICE      governing headless Service          [dataflow-headless]
#   POD_NAMESPACE         namespace in the DNS names  [service account namespace]
#   CLUSTER_DOMAIN        cluster DNS suffix                      [cluster.local]
#   POD_NAME              this pod's name                             [hostname]
#   DATAFLOW_ADDRESSES    explicit "host:port;host:port" list, replaces the
#                         generated one (e.g. outside Kubernetes)
set -eu

# --help answers before anything is derived (outside a pod there is no ordinal):
# `dataflow-entrypoint --help` is the dataflow's own, `dataflow-entrypoint CMD... --help` CMD's.
for arg in "$@"; do
    case "$arg" in
        -h | --help)
            case "$1" in -h | --help) exec python -m dataflows.leaders "$@" ;; esac
            exec "$@"
            ;;
    esac
done

log() {
    # One ECS JSON line on stderr, the shape stockstream/logs.py (ecs-logging) writes:
    # @timestamp (UTC, ms), log.level (lower case), message, log.logger, service.name.
    ts=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
    msg=$(printf '%s' "$2" | sed 's/\\/\\\\/g; s/"/\\"/g')
    printf '{"@timestamp":"%s","log.level":"%s","message":"%s","ecs.version":"1.6.0","log":{"logger":"dataflow-entrypoint"},"service":{"name":"leaders"}}\n' \
        "$ts" "$1" "$msg" >&2
}

die() {
    log error "$1"
    exit 64
}

is_uint() {
    case "$1" in
        '' | *[!0-9]*) return 1 ;;
        *) return 0 ;;
    esac
}

replicas=${DATAFLOW_REPLICAS:-1}
port=${DATAFLOW_PORT:-2101}
sts=${DATAFLOW_STATEFULSET:-dataflow}
svc=${DATAFLOW_SERVICE:-dataflow-headless}
domain=${CLUSTER_DOMAIN:-cluster.local}
pod=${POD_NAME:-$(hostname)}

is_uint "$replicas" && [ "$replicas" -ge 1 ] \
    || die "DATAFLOW_REPLICAS must be a positive integer, got '$replicas'"
is_uint "$port" && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] \
    || die "DATAFLOW_PORT must be a port number, got '$port'"

# Ordinal = what follows the last '-' of the pod name.
ordinal=${pod##*-}
[ "$ordinal" != "$pod" ] && is_uint "$ordinal" \
    || die "cannot derive a process id from pod name '$pod' (expected <statefulset>-<ordinal>)"
[ "$ordinal" -lt "$replicas" ] \
    || die "pod ordinal $ordinal is not below DATAFLOW_REPLICAS=$replicas; keep it equal to the StatefulSet's replicas"

if [ -n "${DATAFLOW_ADDRESSES:-}" ]; then
    addresses=$DATAFLOW_ADDRESSES
else
    ns=${POD_NAMESPACE:-}
    if [ -z "$ns" ] && [ -r /var/run/secrets/kubernetes.io/serviceaccount/namespace ]; then
        ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)
    fi
    [ -n "$ns" ] || die "POD_NAMESPACE is not set and no service account namespace file is mounted"
    addresses=""
    i=0
    while [ "$i" -lt "$replicas" ]; do
        addresses="${addresses:+$addresses;}$sts-$i.$svc.$ns.svc.$domain:$port"
        i=$((i + 1))
    done
fi

# One address per process, or the cluster never forms.
count=$(printf '%s' "$addresses" | awk -F';' '{print NF}')
[ "$count" -eq "$replicas" ] \
    || die "the address list has $count entries but DATAFLOW_REPLICAS=$replicas"

PROCESS_ID=$ordinal
ADDRESSES=$addresses
export PROCESS_ID ADDRESSES

if [ "$#" -eq 0 ]; then
    set -- python -m dataflows.leaders
fi
log info "starting process $PROCESS_ID of $replicas: $*"
exec "$@"
