#!/usr/bin/env bash
# PKI and kubeconfigs of the local test cluster, with openssl alone, into $CACHE/cluster/pki.
# Idempotent: kept while the node address and node name are unchanged (a stamp), else
# regenerated. Called by up.sh; usable alone.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ADDR="${1:-$(uplink_addr)}"
[[ -n $ADDR ]] || die "no address on the default-route interface"
stamp="v1 $ADDR $NODE_NAME"
if [[ -f $PKI/.stamp && "$(cat "$PKI/.stamp")" == "$stamp" ]]; then
    exit 0
fi
rm -rf "$PKI.tmp" && mkdir -p "$PKI.tmp" && cd "$PKI.tmp"
umask 077

openssl req -x509 -new -nodes -newkey rsa:2048 -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=stockstream-cluster-ca" 2>/dev/null
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null

# cert NAME SUBJECT USAGE [SANS]: NAME.key/NAME.crt signed by the CA
cert() {
    local name="$1" subject="$2" usage="$3" sans="${4:-}"
    openssl req -new -nodes -newkey rsa:2048 -keyout "$name.key" -out "$name.csr" -subj "$subject" 2>/dev/null
    {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        echo "extendedKeyUsage=$usage"
        [[ -z $sans ]] || echo "subjectAltName=$sans"
    } >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}
svc_ip="${SERVICE_CIDR%.*/*}.1"   # 10.96.0.1: the `kubernetes` Service
cert apiserver "/CN=kube-apiserver" serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$svc_ip,IP:$ADDR"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=stockstream-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
cert node "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
cert kubelet-serving "/CN=$NODE_NAME" serverAuth "DNS:$NODE_NAME,DNS:localhost,IP:$ADDR,IP:127.0.0.1"

# kubeconfig FILE USER CERT: a kubeconfig for https://127.0.0.1:6443 with embedded certs
kubeconfig() {
    cat >"$1" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: stockstream
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$3.crt")
    client-key-data: $(base64 -w0 "$3.key")
contexts:
- name: stockstream
  context: {cluster: stockstream, user: $2}
current-context: stockstream
YAML
}
kubeconfig admin.kubeconfig stockstream-admin admin
kubeconfig controller-manager.kubeconfig system:kube-controller-manager controller-manager
kubeconfig scheduler.kubeconfig system:kube-scheduler scheduler
kubeconfig kube-proxy.kubeconfig system:kube-proxy kube-proxy
kubeconfig kubelet.kubeconfig "system:node:$NODE_NAME" node
echo "$stamp" >.stamp
cd / && rm -rf "$PKI" && mv "$PKI.tmp" "$PKI"
install -m 0600 "$PKI/admin.kubeconfig" "$KUBECONFIG_ADMIN"
log "PKI and kubeconfigs written to $PKI (node address $ADDR)"
