#!/usr/bin/env bash
# Enforce NetworkPolicies on the single-node cluster of scripts/cluster (bridge CNI, which
# ignores them) with kube-router's policy controller alone (no routing, no service proxy),
# run on the node as a host process like the cluster's other components:
#   sudo scripts/netpol/kube-router.sh start    # build if needed, start, wait until healthy
#   sudo scripts/netpol/kube-router.sh status   # exit 0 while it runs with its chains hooked in
#   sudo scripts/netpol/kube-router.sh stop     # stop by recorded PID, remove its iptables
#                                               # chains and ipsets
# Needs: root, iptables, ipset (installed by build-kube-router.sh), a kernel with ip_set,
# xt_set, xt_physdev and br_netfilter (net.bridge.bridge-nf-call-iptables=1, which
# scripts/cluster/up.sh sets for kube-proxy). Kubeconfig: $KUBECONFIG or the cluster's.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cache=${STOCKSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stockstream}
state=$cache/netpol
pidfile=$state/kube-router.pid
logfile=$state/kube-router.log
kubeconfig=${KUBECONFIG:-$cache/cluster/kubeconfig}
node=${NODE_NAME:-stockstream-node}
service_cidr=${SERVICE_CIDR:-10.96.0.0/16}

say() { printf '[kube-router] %s\n' "$*" >&2; }
die() { printf '[kube-router] ERROR: %s\n' "$*" >&2; exit 1; }

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
# Its health server would listen on every interface (no bind-address option in v2.1.0), so it
# is off; "up" is the controller's top-level chain being hooked into FORWARD.
healthy() { iptables -S FORWARD 2>/dev/null | grep -q -- '-j KUBE-ROUTER-FORWARD'; }

start() {
    [[ $(id -u) == 0 ]] || die "run as root (iptables, ipset)"
    [[ -f $kubeconfig ]] || die "no kubeconfig at $kubeconfig (start scripts/cluster/up.sh or set KUBECONFIG)"
    [[ $(sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null) == 1 ]] \
        || die "net.bridge.bridge-nf-call-iptables is not 1: bridged pod traffic would bypass iptables"
    mkdir -p "$state"
    if running; then
        say "already running (pid $(cat "$pidfile"))"
    else
        local bin
        bin=$("$root/scripts/netpol/build-kube-router.sh" | tail -n 1)
        say "starting $bin (policy controller only) for node $node"
        setsid "$bin" \
            --kubeconfig="$kubeconfig" \
            --hostname-override="$node" \
            --run-firewall=true --run-router=false --run-service-proxy=false \
            --run-loadbalancer=false --enable-cni=false \
            --service-cluster-ip-range="$service_cidr" \
            --health-port=0 --metrics-port=0 \
            --iptables-sync-period=30s \
            --v=1 >>"$logfile" 2>&1 </dev/null &
        echo $! >"$pidfile"
    fi
    for _ in $(seq 1 120); do
        healthy && { say "healthy (pid $(cat "$pidfile"), log $logfile)"; return 0; }
        running || { tail -n 30 "$logfile" >&2; die "kube-router exited"; }
        sleep 1
    done
    tail -n 30 "$logfile" >&2
    die "kube-router not healthy after 120 s"
}

stop() {
    if running; then
        local pid
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        say "stopped pid $pid"
    fi
    rm -f "$pidfile"
    cleanup
}

# What the policy controller leaves behind (kube-router v2.1.0's --cleanup-config left its
# firewall chains in place here, then panicked in its service-proxy part: a nil pointer in
# deleteHairpinIptablesRules): the jumps from the built-in chains, its chains
# (KUBE-ROUTER-*, KUBE-POD-FW-*, KUBE-NWPLCY-*) and its ipsets (KUBE-SRC-*, KUBE-DST-*).
cleanup() {
    local chain rule set
    for chain in INPUT FORWARD OUTPUT; do
        iptables -S "$chain" | grep -- '-j KUBE-ROUTER-' | sed 's/^-A /-D /' | while read -r rule; do
            eval "iptables $rule"
        done
    done
    local chains
    chains=$(iptables -S | awk '$1 == "-N" && $2 ~ /^KUBE-(ROUTER-|POD-FW-|NWPLCY-)/ {print $2}')
    for chain in $chains; do iptables -F "$chain"; done
    for chain in $chains; do iptables -X "$chain"; done
    for set in $(ipset list -n | grep -E '^KUBE-(SRC|DST)-'); do ipset destroy "$set"; done
    say "removed its iptables chains and ipsets"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) running && healthy ;;
    *) die "usage: $0 start|stop|status" ;;
esac
