#!/usr/bin/env bash
# Node configuration of the local cluster, written to $CACHE/cluster (called by up.sh):
# containerd.toml, the CNI conflist, kubelet.yaml and kube-proxy.yaml. A file is replaced
# only when its content changes, and the names of the changed files are printed (up.sh
# restarts their daemons; kube-proxy even exits by itself when its file changes).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ADDR="${1:?usage: node-config.sh NODE_ADDRESS}"
mkdir -p "$CLUSTER_DIR/cni/net.d"

# put FILE: stdin -> FILE if different; prints FILE's name when it changed
put() {
    local tmp="$1.new"
    cat >"$tmp"
    if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; basename "$1"; fi
}

# containerd: its own root/state/socket (not the Debian service's), CRI with
# restrict_oom_score_adj (root lacks CAP_SYS_RESOURCE here: every sandbox fails without it),
# our pause image, and the local registry as the mirror of localhost:5000.
put "$CLUSTER_DIR/containerd.toml" <<TOML
version = 2
root = "$DATA/containerd"
state = "$RUNTIME/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMG_PAUSE"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REGISTRY"]
    endpoint = ["http://$REGISTRY_ADDR"]
TOML

# CNI: bridge cni0 + host-local IPAM on the node's /24 + portmap. No ipMasq: nothing is
# NATed out (the guards drop it anyway).
put "$CLUSTER_DIR/cni/net.d/10-stockstream.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "stockstream",
  "plugins": [
    {
      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$DATA/cni/networks",
        "ranges": [[{"subnet": "$NODE_POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

put "$CLUSTER_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failSwapOn: false
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
clusterDNS: [$CLUSTER_DNS]
clusterDomain: cluster.local
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# The kubelet's default: /var/log/containers/*.log link here, and node log shippers (the
# logging component's Filebeat) mount /var/log to follow those links.
podLogsDir: /var/log/pods
serializeImagePulls: false
# a shared, loaded machine: evict only when really out of resources, keep our images
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
imageGCHighThresholdPercent: 98
imageGCLowThresholdPercent: 95
maxPods: 110
YAML

put "$CLUSTER_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $PKI/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
# kube-proxy cannot set the conntrack sysctls here: leave them alone
conntrack: {maxPerCore: 0}
healthzBindAddress: 127.0.0.1:10256
# NodePorts on the node address only (the guards drop them from outside)
nodePortAddresses: [primary]
metricsBindAddress: 127.0.0.1:10249
YAML
