#!/usr/bin/env bash
# Stop the local test cluster started by up.sh, by the PIDs it recorded, and clean the node:
# pod containers (ctr -n k8s.io), kubelet volume mounts, CNI network namespaces, cni0,
# kube-proxy's iptables rules; the guards are removed only once cni0 is gone. The cached
# binaries, images, registry storage and etcd data stay (the next up.sh is warm).
# Idempotent. Usage: down.sh [--keep-registry]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
export PATH="$K8S_BIN:$PATH:/usr/local/sbin:/usr/sbin:/sbin"
t0=$SECONDS
mkdir -p "$CLUSTER_DIR"
if [[ -z ${STOCKSTREAM_CLUSTER_LOCKED:-} ]]; then  # set by a caller holding the lock
    exec 7>"$CLUSTER_DIR/.up.lock"
    flock 7
fi

# 1. kubelet first (it would restart containers), then the control plane's writers.
stop_daemon kubelet 30
stop_daemon kube-proxy
stop_daemon kube-scheduler
stop_daemon kube-controller-manager

# 2. pod containers and sandboxes, through our containerd
if pid_alive containerd; then
    ctr=(ctr --address "$CONTAINERD_SOCK" -n k8s.io)
    for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
        "${ctr[@]}" tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
    done
    for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            "${ctr[@]}" tasks delete -f "$task" >/dev/null 2>&1 && break
            sleep 0.5
        done
    done
    for c in $("${ctr[@]}" containers ls -q 2>/dev/null); do
        "${ctr[@]}" containers delete "$c" >/dev/null 2>&1 || log "could not delete container $c"
    done
fi
stop_daemon containerd 30

# 3. mounts left by kubelet and containerd (volumes, shm, rootfs), deepest first
for root in "$DATA/kubelet" "$RUNTIME" "$DATA/containerd"; do
    awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r \
        | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" || log "cannot unmount $m"; done
done

# 4. network: CNI netns (their veths go with them), cni0, IPAM state, kube-proxy's rules
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do
    ip netns delete "$ns" 2>/dev/null || log "cannot delete netns $ns"
done
if ip link show cni0 >/dev/null 2>&1; then
    ip link set cni0 down 2>/dev/null || true
    ip link delete cni0 || die "cannot delete cni0: the guards stay in place"
fi
rm -rf "$DATA/cni/networks"
if [[ -x $K8S_BIN/kube-proxy ]]; then
    "$K8S_BIN/kube-proxy" --cleanup --config="$CLUSTER_DIR/kube-proxy.yaml" >/dev/null 2>&1 || true
fi

# 5. control plane storage side, the registry, then the guards (cni0 is gone now)
stop_daemon kube-apiserver
stop_daemon etcd
[[ ${1:-} == --keep-registry ]] || stop_daemon registry
"$CLUSTER_SCRIPTS/guards.sh" remove
if [[ -f $CLUSTER_DIR/ip_forward.orig ]]; then
    sysctl -q -w "net.ipv4.ip_forward=$(cat "$CLUSTER_DIR/ip_forward.orig")"
    rm -f "$CLUSTER_DIR/ip_forward.orig"
fi
log "cluster stopped in $((SECONDS - t0))s"
