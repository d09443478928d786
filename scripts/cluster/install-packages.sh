#!/usr/bin/env bash
# Debian packages of the local test cluster: etcd, containerd, runc, the CNI plugins,
# iptables/conntrack (kube-proxy), debootstrap + buildah (base images), docker-registry
# (the local image registry). Idempotent: returns at once when every command is present;
# otherwise one `apt-get update` and one `apt-get install`. Needs root (or sudo).
set -euo pipefail

log() { printf '[cluster/install-packages] %s\n' "$*" >&2; }
die() { printf '[cluster/install-packages] ERROR: %s\n' "$*" >&2; exit 1; }

# package -> a file it installs (checked instead of dpkg state: fast and exact)
declare -A WANT=(
    [etcd-server]=/usr/bin/etcd
    [etcd-client]=/usr/bin/etcdctl
    [containerd]=/usr/bin/containerd
    [runc]=/usr/sbin/runc
    [containernetworking-plugins]=/usr/lib/cni/bridge
    [iptables]=/usr/sbin/iptables
    [conntrack]=/usr/sbin/conntrack
    [ethtool]=/usr/sbin/ethtool
    [socat]=/usr/bin/socat
    [debootstrap]=/usr/sbin/debootstrap
    [docker-registry]=/usr/bin/docker-registry
    [buildah]=/usr/bin/buildah
    [openssl]=/usr/bin/openssl
    [util-linux]=/usr/bin/nsenter
    [python3]=/usr/bin/python3
    [curl]=/usr/bin/curl
)

missing=()
for pkg in "${!WANT[@]}"; do
    [[ -e ${WANT[$pkg]} ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
    log "packages present"
    exit 0
fi
command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: this needs Debian (or install them yourself)"
sudo=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || die "need root or sudo to install ${missing[*]}"
    sudo=(sudo)
fi
t0=$SECONDS
log "installing ${missing[*]}"
apt=(env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -qq)
"${sudo[@]}" "${apt[@]}" update >&2 || die "apt-get update failed"
"${sudo[@]}" "${apt[@]}" install --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
for pkg in "${!WANT[@]}"; do
    [[ -e ${WANT[$pkg]} ]] || die "$pkg installed but ${WANT[$pkg]} is missing"
done
log "installed ${missing[*]} in $((SECONDS - t0))s"
