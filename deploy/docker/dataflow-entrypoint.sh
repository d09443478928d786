#!/bin/sh
# Entrypoint for one process of the Bytewax "leaders" dataflow cluster.
#
# Runs as every pod of the `dataflow` StatefulSet. It derives this process's
# id from the pod ordinal (the trailing "-<n>" of the hostname / POD_NAME),
# builds the cluster address list from DATAFLOW_REPLICAS and the pods'
# stable headless-service DNS names, prepares the recovery directory and
# then execs `python -m bytewax.run`.
#
# Environment (defaults in brackets):
#   DATAFLOW_REPLICAS     number of processes in the cluster; MUST equal the
#                         StatefulSet's spec.replicas                      [1]
#   DATAFLOW_FLOW         bytewax import string     [dataflows.leaders.flow:flow]
#   DATAFLOW_WORKERS      workers (threads) per process                    [1]
#   DATAFLOW_PORT         timely communication port                     [2101]
#   DATAFLOW_STATEFULSET  StatefulSet name; pods are <name>-<ordinal> [dataflow]
#   DATAFLOW_SERVICE      governing headless Service        [dataflow-headless]
#   POD_NAMESPACE         namespace used in the DNS names   [from the SA token]
#   CLUSTER_DOMAIN        cluster DNS suffix                    [cluster.local]
#   DATAFLOW_ADDRESSES    explicit ";"-separated address list (overrides the
#                         generated one; useful outside Kubernetes)
#   POD_NAME              pod name                                [hostname]
#   RECOVERY_DIR          recovery partitions directory; empty disables recovery
#   RECOVERY_PARTITIONS   partitions to create on first start  [DATAFLOW_REPLICAS]
#   SNAPSHOT_INTERVAL_S   seconds between state snapshots                 [10]
#   BACKUP_INTERVAL_S     seconds to keep superseded snapshots             [0]
#
# Recovery layout: bytewax needs the *cluster as a whole* to see every
# partition exactly once; a partition may live on any process. Each pod has
# its own PVC, so only ordinal 0 creates the partitions (once, when its
# directory holds none); other ordinals start with an empty directory. This
# keeps scale-up safe (new pods never create duplicate, empty partitions).
set -eu

log() {
    # One JSON line on stderr, same field names as the Python services.
    ts=$(date -u +%Y-%m-%dT%H:%M:%S+0000)
    msg=$(printf '%s' "$2" | sed 's/\\/\\\\/g; s/"/\\"/g')
    printf '{"ts":"%s","level":"%s","logger":"dataflow-entrypoint","message":"%s","service":"dataflow"}\n' \
        "$ts" "$1" "$msg" >&2
}

die() {
    log ERROR "$1"
    exit 64
}

is_uint() {
    case "$1" in
        '' | *[!0-9]*) return 1 ;;
        *) return 0 ;;
    esac
}

replicas=${DATAFLOW_REPLICAS:-1}
workers=${DATAFLOW_WORKERS:-1}
port=${DATAFLOW_PORT:-2101}
flow=${DATAFLOW_FLOW:-dataflows.leaders.flow:flow}
sts=${DATAFLOW_STATEFULSET:-dataflow}
svc=${DATAFLOW_SERVICE:-dataflow-headless}
domain=${CLUSTER_DOMAIN:-cluster.local}
pod=${POD_NAME:-$(hostname)}

is_uint "$replicas" && [ "$replicas" -ge 1 ] || die "DATAFLOW_REPLICAS must be a positive integer, got '$replicas'"
is_uint "$workers" && [ "$workers" -ge 1 ] || die "DATAFLOW_WORKERS must be a positive integer, got '$workers'"
is_uint "$port" || die "DATAFLOW_PORT must be an integer, got '$port'"

# Ordinal = everything after the last '-' of the pod name.
ordinal=${pod##*-}
[ "$ordinal" != "$pod" ] && is_uint "$ordinal" \
    || die "cannot derive a process id from pod name '$pod' (expected <statefulset>-<ordinal>)"
[ "$ordinal" -lt "$replicas" ] \
    || die "pod ordinal $ordinal is outside DATAFLOW_REPLICAS=$replicas; keep the env var equal to spec.replicas"

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
        addr="$sts-$i.$svc.$ns.svc.$domain:$port"
        addresses=${addresses:+$addresses;}$addr
        i=$((i + 1))
    done
fi

# Sanity: the address list must have one entry per process.
count=$(printf '%s' "$addresses" | awk -F';' '{print NF}')
[ "$count" -eq "$replicas" ] || die "address list has $count entries but DATAFLOW_REPLICAS=$replicas"

set -- "$flow" -w "$workers" -i "$ordinal" -a "$addresses"

recovery_dir=${RECOVERY_DIR:-}
if [ -n "$recovery_dir" ]; then
    parts=${RECOVERY_PARTITIONS:-$replicas}
    snapshot=${SNAPSHOT_INTERVAL_S:-10}
    backup=${BACKUP_INTERVAL_S:-0}
    is_uint "$parts" && [ "$parts" -ge 1 ] || die "RECOVERY_PARTITIONS must be a positive integer, got '$parts'"
    is_uint "$snapshot" && [ "$snapshot" -ge 1 ] || die "SNAPSHOT_INTERVAL_S must be a positive integer, got '$snapshot'"
    is_uint "$backup" || die "BACKUP_INTERVAL_S must be a non-negative integer, got '$backup'"
    mkdir -p "$recovery_dir"
    if [ "$ordinal" -eq 0 ]; then
        existing=$(find "$recovery_dir" -maxdepth 1 -name 'part-*.sqlite3' | wc -l)
        if [ "$existing" -eq 0 ]; then
            # Create in a scratch dir on the same volume, then move into place,
            # so a crash mid-init never leaves a partial partition set behind.
            tmp="$recovery_dir/.init.$$"
            rm -rf "$tmp"
            mkdir -p "$tmp"
            log INFO "initialising $parts recovery partitions in $recovery_dir"
            python -m bytewax.recovery "$tmp" "$parts"
            mv "$tmp"/part-*.sqlite3 "$recovery_dir"/
            rmdir "$tmp"
        else
            log INFO "found $existing recovery partitions in $recovery_dir; resuming"
        fi
    fi
    set -- "$@" -r "$recovery_dir" -s "$snapshot" -b "$backup"
fi

log INFO "starting bytewax process $ordinal of $replicas ($flow)"
exec python -m bytewax.run "$@"
