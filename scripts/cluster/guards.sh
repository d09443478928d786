#!/usr/bin/env bash
# Guards so that nothing of the local cluster leaves the machine (pod and service ranges
# are private addresses that must never be sent out on the uplink):
#   mangle FORWARD     -o <uplink> -j DROP                        (no routed traffic out)
#   mangle POSTROUTING -o <uplink> -d 10.96.0.0/16 -j DROP        (service range)
#   mangle POSTROUTING -o <uplink> -d 10.244.0.0/16 -j DROP       (pod range)
#   mangle PREROUTING  -i <uplink> -p tcp/udp to the cluster's ports -j DROP
#                      (apiserver 6443, kubelet 10250, NodePorts: not reachable from outside)
#   ip6tables mangle FORWARD -o <uplink> -j DROP
#   ip route unreachable 10.244.0.0/16  (before cni0 exists; cni0's /24 is more specific)
# mangle, not filter: kube-proxy inserts its filter FORWARD rules above ours, and a filter
# OUTPUT rule sees the pre-DNAT interface and breaks ClusterIP.
# Usage: guards.sh install | remove | check   (install/remove idempotent; check exits 1
# naming what is missing)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEV="${STOCKSTREAM_UPLINK:-$(uplink_dev)}"
[[ -n $DEV ]] || die "no default-route interface found (set STOCKSTREAM_UPLINK)"
COMMENT=(-m comment --comment stockstream-cluster-guard)
RULES=(
    "iptables FORWARD -o $DEV -j DROP"
    "iptables POSTROUTING -o $DEV -d $SERVICE_CIDR -j DROP"
    "iptables POSTROUTING -o $DEV -d $POD_CIDR -j DROP"
    "iptables PREROUTING -i $DEV -p tcp -m multiport --dports 6443,10250,10256,30000:32767 -j DROP"
    "iptables PREROUTING -i $DEV -p udp -m multiport --dports 30000:32767 -j DROP"
    "ip6tables FORWARD -o $DEV -j DROP"
)

rule() {  # rule -C|-I|-D "<tool> <chain> <spec...>"
    local op="$1" tool chain spec
    read -r tool chain spec <<<"$2"
    # shellcheck disable=SC2086  # spec is a word list on purpose
    "$tool" -w 5 -t mangle "$op" "$chain" $spec "${COMMENT[@]}" 2>/dev/null
}
route_ok() { ip -4 route show type unreachable | grep -qE "^unreachable ${POD_CIDR//./\\.}( |$)"; }

case "${1:-}" in
install)
    for r in "${RULES[@]}"; do rule -C "$r" || rule -I "$r" || die "cannot add mangle rule: $r"; done
    route_ok || ip route add unreachable "$POD_CIDR" || die "cannot add the unreachable route for $POD_CIDR"
    log "guards in place on $DEV"
    ;;
remove)
    if ip link show cni0 >/dev/null 2>&1; then die "cni0 still exists: the guards stay"; fi
    for r in "${RULES[@]}"; do while rule -D "$r"; do :; done; done
    ! route_ok || ip route del unreachable "$POD_CIDR"
    log "guards removed"
    ;;
check)
    missing=0
    for r in "${RULES[@]}"; do rule -C "$r" || { echo "missing: mangle $r" >&2; missing=1; }; done
    route_ok || { echo "missing: ip route unreachable $POD_CIDR" >&2; missing=1; }
    exit "$missing"
    ;;
*) die "usage: $0 install|remove|check" ;;
esac
