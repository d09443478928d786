# Shared settings and helpers of scripts/cluster/*.sh (sourced, not run).
# Every path of the local test cluster is here: binaries and images under the cache
# root, runtime state under /var/lib/stockstream-cluster and /run/stockstream-cluster.

CLUSTER_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${STOCKSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stockstream}"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.34.3}"
K8S_BIN="$CACHE/kubernetes/$KUBERNETES_VERSION/bin"
COREDNS_VERSION=v1.12.1
LOCAL_PATH_VERSION=v0.0.30
ADDONS="$CACHE/cluster-addons"          # coredns, local-path-provisioner, pause binaries
ADDONS_BIN="$ADDONS/bin"
IMAGES_WORK="$CACHE/cluster-images"     # debootstrap rootfs and image stamps
CLUSTER_DIR="$CACHE/cluster"            # pki, kubeconfigs, configs, logs, pids
PKI="$CLUSTER_DIR/pki"
RUN_DIR="$CLUSTER_DIR/run"              # <name>.pid of every process we start
LOG_DIR="$CLUSTER_DIR/logs"
KUBECONFIG_ADMIN="$CLUSTER_DIR/kubeconfig"
DATA=/var/lib/stockstream-cluster        # etcd, containerd root, kubelet root
RUNTIME=/run/stockstream-cluster         # containerd state and socket
CONTAINERD_SOCK="$RUNTIME/containerd/containerd.sock"
REGISTRY_ADDR=127.0.0.1:5000
REGISTRY=localhost:5000                  # image prefix, as pods and buildah see it
POD_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
CLUSTER_DNS=10.96.0.10
NODE_NAME="${STOCKSTREAM_NODE_NAME:-stockstream-node}"
# images (published in scripts/cluster/README.md)
IMG_PAUSE="$REGISTRY/stockstream/pause:3.10"
IMG_DEBIAN="$REGISTRY/stockstream/debian:bookworm"
IMG_PYTHON="$REGISTRY/stockstream/python:3.11"
IMG_COREDNS="$REGISTRY/stockstream/coredns:${COREDNS_VERSION#v}"
IMG_LOCAL_PATH="$REGISTRY/stockstream/local-path-provisioner:$LOCAL_PATH_VERSION"

_tag="${0##*/}"
log() { printf '[cluster/%s %(%H:%M:%S)T] %s\n' "${_tag%.sh}" -1 "$*" >&2; }
die() { printf '[cluster/%s] ERROR: %s\n' "${_tag%.sh}" "$*" >&2; exit 1; }

need_root() { ((EUID == 0)) || die "must run as root (it starts containerd, kubelet and iptables rules)"; }

# The address of the interface with the default route (eth0 here): apiserver advertise
# address and the interface the guards protect.
uplink_dev() { ip -4 route show default | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}'; }
uplink_addr() { ip -4 -o addr show dev "$(uplink_dev)" | awk '{split($4,a,"/"); print a[1]; exit}'; }

# pid_alive NAME: the process recorded in $RUN_DIR/NAME.pid runs (and is not a zombie)
pid_alive() {
    local f="$RUN_DIR/$1.pid" pid
    [[ -f $f ]] || return 1
    pid="$(cat "$f")"
    [[ -n $pid && -d /proc/$pid ]] || return 1
    # the same program (not a reused PID) and not a zombie
    [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$1"* ]] || return 1
    ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null
}

# start_daemon NAME CMD...: start CMD detached (own session), log to $LOG_DIR/NAME.log,
# record its PID. Returns at once; callers wait for health themselves.
start_daemon() {
    local name="$1"; shift
    mkdir -p "$RUN_DIR" "$LOG_DIR"
    # fds 7-9 are the scripts' flock descriptors: a daemon inheriting one would hold the
    # lock for its whole life and block every later up.sh/down.sh
    setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null 7>&- 8>&- 9>&- &
    echo $! >"$RUN_DIR/$name.pid"
    log "started $name (pid $!, log $LOG_DIR/$name.log)"
}

# stop_daemon NAME [TIMEOUT_S]: SIGTERM the recorded PID, SIGKILL after the timeout.
stop_daemon() {
    local name="$1" timeout_s="${2:-20}" pid i
    [[ -f $RUN_DIR/$name.pid ]] || return 0
    pid="$(cat "$RUN_DIR/$name.pid")"
    if pid_alive "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < timeout_s * 10; i++)); do
            pid_alive "$name" || break
            sleep 0.1
        done
        if pid_alive "$name"; then
            log "$name (pid $pid) ignored SIGTERM; SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$RUN_DIR/$name.pid"
}

# wait_for DESCRIPTION TIMEOUT_S CMD...: poll CMD every 0.5 s until it succeeds.
wait_for() {
    local what="$1" timeout_s="$2" deadline; shift 2
    deadline=$((SECONDS + timeout_s))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
    log "$what: ok"
}
