#!/usr/bin/env bash
# Start the local single-node Kubernetes test cluster (see README.md): etcd, kube-apiserver,
# controller-manager, scheduler, containerd, kubelet, kube-proxy, the CNI bridge, CoreDNS,
# local-path-provisioner (default StorageClass) and the local registry. Builds whatever is
# missing first (packages, binaries, images; all cached). Guards against traffic leaving the
# machine are installed before anything can send pod or service traffic.
# Idempotent: a cluster of ours that is already up and healthy is reused (returns in
# seconds); a component that died is restarted. Writes the admin kubeconfig to
# $CACHE/cluster/kubeconfig. Needs root. Stop: scripts/cluster/down.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
export PATH="$K8S_BIN:$PATH:/usr/local/sbin:/usr/sbin:/sbin"
t_start=$SECONDS
mkdir -p "$CLUSTER_DIR" "$RUN_DIR" "$LOG_DIR"
if [[ -z ${STOCKSTREAM_CLUSTER_LOCKED:-} ]]; then  # set by a caller holding the lock
    exec 7>"$CLUSTER_DIR/.up.lock"
    flock 7
fi

kc() { "$K8S_BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
apiserver_ready() {
    curl -fsS -m 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
        https://127.0.0.1:6443/readyz >/dev/null
}
# node_ready: the kubelet we started is alive and the node's Ready condition is True with a
# heartbeat posted after that start (a stale Ready from before a SIGKILL does not count)
node_ready() {
    local ready beat
    pid_alive kubelet || return 1
    IFS=' ' read -r ready beat < <(kc get node "$NODE_NAME" -o \
        'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}' 2>/dev/null)
    [[ $ready == True && -n $beat ]] && (($(date -d "$beat" +%s) >= ${KUBELET_STARTED_S:-0}))
}
# dns_answers: CoreDNS (through the kube-dns ClusterIP) resolves the kubernetes Service
dns_answers() { python3 "$CLUSTER_SCRIPTS/dns_query.py" "$CLUSTER_DNS" kubernetes.default.svc.cluster.local; }
all_alive() {
    local n
    for n in registry etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy; do
        pid_alive "$n" || return 1
    done
}

if all_alive && apiserver_ready && node_ready && "$CLUSTER_SCRIPTS/guards.sh" check 2>/dev/null && dns_answers >/dev/null 2>&1; then
    log "cluster already up and healthy (kubeconfig $KUBECONFIG_ADMIN)"
    exit 0
fi
# Another cluster (not started by these scripts) holding the ports: refuse, never fight it.
if ! pid_alive kube-apiserver && ss -ltn '( sport = :6443 )' | grep -q LISTEN; then
    die "port 6443 is taken by a process these scripts did not start; stop that cluster or set STOCKSTREAM_KUBECONFIG to use it"
fi
if ! pid_alive kubelet && ss -ltn '( sport = :10250 )' | grep -q LISTEN; then
    die "port 10250 (kubelet) is taken by a process these scripts did not start"
fi

# --- 1. what we run: packages, binaries, images (each fast when cached) ----------------
"$CLUSTER_SCRIPTS/install-packages.sh"
"$CLUSTER_SCRIPTS/build-kubernetes.sh"
"$CLUSTER_SCRIPTS/build-addons.sh"
"$CLUSTER_SCRIPTS/images.sh" all      # also starts the registry
ADDR="$(uplink_addr)"
[[ -n $ADDR ]] || die "no IPv4 address on the default-route interface"
"$CLUSTER_SCRIPTS/pki.sh" "$ADDR"

# --- 2. guards and sysctls, before any pod or service traffic can exist -----------------
"$CLUSTER_SCRIPTS/guards.sh" install
[[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter 2>/dev/null \
    || die "br_netfilter is not available (no /proc/sys/net/bridge); kube-proxy needs it"
[[ -f $CLUSTER_DIR/ip_forward.orig ]] || cat /proc/sys/net/ipv4/ip_forward >"$CLUSTER_DIR/ip_forward.orig"
sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1

# The cluster's state (etcd's objects, the kubelet's pods, the volumes) belongs to one CA and
# one Kubernetes version: state made under others (a cache folder removed, so a new CA, while
# $DATA stayed) would fail TLS everywhere ("certificate signed by unknown authority"). Then
# stop what runs and start from empty state; images and the registry stay.
identity="ca $(sha256sum "$PKI/ca.crt" | cut -c1-16) kubernetes $KUBERNETES_VERSION"
if [[ -n "$(ls -A "$DATA/etcd" 2>/dev/null)" && "$(cat "$DATA/.identity" 2>/dev/null)" != "$identity" ]]; then
    log "state in $DATA is not from this CA and version ($identity): starting from empty state"
    STOCKSTREAM_CLUSTER_LOCKED=1 "$CLUSTER_SCRIPTS/down.sh" --keep-registry
    rm -rf "$DATA/etcd" "$DATA/kubelet" "$DATA/local-path"
fi
mkdir -p "$DATA"/{etcd,kubelet,local-path,cni/networks} "$RUNTIME" "$CLUSTER_DIR/cni/net.d" /var/log/pods
echo "$identity" >"$DATA/.identity"
chmod 0700 "$DATA/etcd"

# --- 3. control plane -------------------------------------------------------------------
ETCD_URL=http://127.0.0.1:2479
if ! pid_alive etcd; then
    start_daemon etcd /usr/bin/etcd --name stockstream --data-dir "$DATA/etcd" \
        --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
        --listen-peer-urls http://127.0.0.1:2480 --initial-advertise-peer-urls http://127.0.0.1:2480 \
        --initial-cluster stockstream=http://127.0.0.1:2480 --listen-metrics-urls http://127.0.0.1:2481 \
        --quota-backend-bytes=2147483648 --log-level warn
fi
wait_for etcd 60 curl -fsS -m 3 "$ETCD_URL/health" || die "etcd not healthy (log $LOG_DIR/etcd.log)"

if ! pid_alive kube-apiserver; then
    start_daemon kube-apiserver "$K8S_BIN/kube-apiserver" \
        --advertise-address="$ADDR" --bind-address=0.0.0.0 --secure-port=6443 \
        --etcd-servers="$ETCD_URL" --service-cluster-ip-range="$SERVICE_CIDR" \
        --authorization-mode=Node,RBAC --allow-privileged=true \
        --enable-admission-plugins=NodeRestriction \
        --client-ca-file="$PKI/ca.crt" \
        --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
        --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
        --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
        --kubelet-certificate-authority="$PKI/ca.crt" \
        --kubelet-preferred-address-types=InternalIP,Hostname \
        --service-account-issuer=https://kubernetes.default.svc.cluster.local \
        --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
        --profiling=false --v=1
fi
wait_for kube-apiserver 120 apiserver_ready || die "kube-apiserver not ready (log $LOG_DIR/kube-apiserver.log)"

if ! pid_alive kube-controller-manager; then
    start_daemon kube-controller-manager "$K8S_BIN/kube-controller-manager" \
        --kubeconfig="$PKI/controller-manager.kubeconfig" \
        --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
        --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
        --bind-address=127.0.0.1 --leader-elect=false \
        --allocate-node-cidrs --cluster-cidr="$POD_CIDR" --node-cidr-mask-size=24 \
        --service-cluster-ip-range="$SERVICE_CIDR" \
        --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
        --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" \
        --use-service-account-credentials=true --profiling=false --v=1
fi
if ! pid_alive kube-scheduler; then
    start_daemon kube-scheduler "$K8S_BIN/kube-scheduler" \
        --kubeconfig="$PKI/scheduler.kubeconfig" \
        --authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
        --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
        --bind-address=127.0.0.1 --leader-elect=false --profiling=false --v=1
fi

# --- 4. node: containerd, CNI, kubelet, kube-proxy ---------------------------------------
changed="$("$CLUSTER_SCRIPTS/node-config.sh" "$ADDR")"
for f in $changed; do  # a running daemon whose configuration changed is restarted
    case $f in
    containerd.toml) stop_daemon containerd 30 ;;
    kubelet.yaml) stop_daemon kubelet 30 ;;
    kube-proxy.yaml) stop_daemon kube-proxy ;;
    esac
done
ctr_ok() { ctr --address "$CONTAINERD_SOCK" version; }
if ! pid_alive containerd; then
    start_daemon containerd /usr/bin/containerd --config "$CLUSTER_DIR/containerd.toml"
fi
wait_for containerd 60 ctr_ok || die "containerd not answering (log $LOG_DIR/containerd.log)"

# kubelet_running: start the kubelet when it is not running. A containerd that has just
# started answers `ctr version` before its CRI service is initialized, and a kubelet started
# then exits at once ("server is not initialized yet"): it is started again on the next poll.
KUBELET_STARTED_S=0
kubelet_running() {
    if ! pid_alive kubelet; then
        KUBELET_STARTED_S=$(($(date +%s) - 1))
        start_daemon kubelet "$K8S_BIN/kubelet" --config="$CLUSTER_DIR/kubelet.yaml" \
            --kubeconfig="$PKI/kubelet.kubeconfig" --root-dir="$DATA/kubelet" \
            --hostname-override="$NODE_NAME" --node-ip="$ADDR" --v=1
        sleep 2
    fi
    node_ready
}
if ! pid_alive kube-proxy; then
    start_daemon kube-proxy "$K8S_BIN/kube-proxy" --config="$CLUSTER_DIR/kube-proxy.yaml" --v=1
fi
wait_for "node $NODE_NAME Ready" 180 kubelet_running || die "node not Ready (log $LOG_DIR/kubelet.log)"

# --- 5. add-ons: CoreDNS, local-path-provisioner + default StorageClass -------------------
render() {
    sed -e "s|@IMG_COREDNS@|$IMG_COREDNS|g" -e "s|@CLUSTER_DNS@|$CLUSTER_DNS|g" \
        -e "s|@IMG_LOCAL_PATH@|$IMG_LOCAL_PATH|g" -e "s|@IMG_DEBIAN@|$IMG_DEBIAN|g" \
        -e "s|@LOCAL_PATH_DIR@|$DATA/local-path|g" "$CLUSTER_SCRIPTS/manifests/$1"
}
{ render coredns.yaml; echo ---; render local-path-storage.yaml; } | kc apply -f - >/dev/null \
    || die "applying the add-ons failed"
kc -n kube-system rollout status deployment/coredns --timeout=300s >/dev/null \
    || die "CoreDNS did not become ready (kubectl -n kube-system describe pod -l k8s-app=kube-dns)"
wait_for "CoreDNS answers on $CLUSTER_DNS" 120 dns_answers || die "CoreDNS does not answer on $CLUSTER_DNS"
kc -n local-path-storage rollout status deployment/local-path-provisioner --timeout=300s >/dev/null \
    || die "local-path-provisioner did not become ready"
log "cluster up in $((SECONDS - t_start))s: export KUBECONFIG=$KUBECONFIG_ADMIN"
