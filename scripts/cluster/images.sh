#!/usr/bin/env bash
# Build the cluster's base images without Docker Hub and push them to the local registry
# (scripts/cluster/registry.sh, localhost:5000). Names (see README.md):
#   localhost:5000/stockstream/debian:bookworm   debootstrap --variant=minbase bookworm
#   localhost:5000/stockstream/python:3.11       debian + python3, python3-venv, python3-pip
#   localhost:5000/stockstream/pause:3.10        static pause (the pod sandbox image)
#   localhost:5000/stockstream/coredns:1.12.1    static CoreDNS
#   localhost:5000/stockstream/local-path-provisioner:v0.0.30 (on the debian base)
# Usage: images.sh [base|all]   (base = debian + python only; default all)
# Built with buildah (--isolation chroot, no daemon). Idempotent: an image whose recipe
# stamp matches and whose tag the registry has is skipped. debootstrap uses the Debian
# mirror named in the machine's apt sources ($STOCKSTREAM_DEBIAN_MIRROR overrides).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root

what="${1:-all}"
[[ $what == base || $what == all ]] || die "usage: $0 [base|all]"
export BUILDAH_ISOLATION=chroot
"$CLUSTER_SCRIPTS/install-packages.sh"
"$CLUSTER_SCRIPTS/registry.sh"
mkdir -p "$IMAGES_WORK"
exec 8>"$IMAGES_WORK/.lock"
flock 8

debian_mirror() {
    if [[ -n ${STOCKSTREAM_DEBIAN_MIRROR:-} ]]; then echo "$STOCKSTREAM_DEBIAN_MIRROR"; return; fi
    local uri
    uri="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' \
        | grep -E '/debian/?$' | head -n1 || true)"
    [[ -n $uri ]] || uri="$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' \
        /etc/apt/sources.list 2>/dev/null || true)"
    [[ -n $uri ]] || die "no Debian mirror in the apt sources; set STOCKSTREAM_DEBIAN_MIRROR"
    echo "$uri"
}

# in_registry IMAGE: the registry has this tag
in_registry() {
    local ref="${1#"$REGISTRY"/}" repo tag
    repo="${ref%:*}"; tag="${ref##*:}"
    curl -fsS -m 5 -o /dev/null -I \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REGISTRY_ADDR/v2/$repo/manifests/$tag"
}
# fresh KEY RECIPE IMAGE: image already built from this recipe and pushed
fresh() { [[ -f $IMAGES_WORK/$1.stamp && "$(cat "$IMAGES_WORK/$1.stamp")" == "$2" ]] && in_registry "$3"; }
push() {
    buildah push --quiet --tls-verify=false "$1" "docker://$1" >/dev/null || die "push $1 failed"
}
# finish KEY RECIPE IMAGE CONTAINER: commit, push, stamp
finish() {
    buildah commit --quiet --rm "$4" "$3" >/dev/null || die "commit $3 failed"
    push "$3"
    echo "$2" >"$IMAGES_WORK/$1.stamp"
    log "pushed $3"
}
label() { buildah config --label org.opencontainers.image.source=stockstream/scripts/cluster "$@"; }

# --- debian:bookworm (minbase) -------------------------------------------------------
build_debian() {
    local recipe="debootstrap-minbase-bookworm-1" rootfs="$IMAGES_WORK/bookworm-minbase" c mirror t0=$SECONDS
    fresh debian "$recipe" "$IMG_DEBIAN" && return
    if [[ ! -f $rootfs.tar || "$(cat "$rootfs.stamp" 2>/dev/null)" != "$recipe" ]]; then
        mirror="$(debian_mirror)"
        log "debootstrap --variant=minbase bookworm from $mirror (about 2 min)"
        rm -rf "$rootfs.tmp"
        debootstrap --variant=minbase bookworm "$rootfs.tmp" "$mirror" >"$IMAGES_WORK/debootstrap.log" 2>&1 \
            || { tail -n 20 "$IMAGES_WORK/debootstrap.log" >&2; die "debootstrap failed"; }
        chroot "$rootfs.tmp" apt-get clean
        rm -rf "$rootfs.tmp"/var/lib/apt/lists/* "$rootfs.tmp"/var/log/*.log \
            "$rootfs.tmp"/var/cache/apt/*.bin "$rootfs.tmp"/var/cache/debconf/*-old
        tar --numeric-owner --xattrs -C "$rootfs.tmp" \
            --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf "$rootfs.tar.tmp" .
        mv "$rootfs.tar.tmp" "$rootfs.tar"
        echo "$recipe" >"$rootfs.stamp"
        rm -rf "$rootfs.tmp"
    fi
    c="$(buildah from scratch)"
    buildah add --quiet "$c" "$rootfs.tar" / >/dev/null
    label --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd /bin/bash "$c"
    finish debian "$recipe" "$IMG_DEBIAN" "$c"
    log "debian image in $((SECONDS - t0))s"
}

# --- python:3.11 ---------------------------------------------------------------------
build_python() {
    local recipe="python3-venv-pip-1 $(cat "$IMAGES_WORK/debian.stamp")" c t0=$SECONDS
    fresh python "$recipe" "$IMG_PYTHON" && return
    c="$(buildah from --pull=false --tls-verify=false "$IMG_DEBIAN")"
    buildah run "$c" -- sh -ec 'export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip >/dev/null
        apt-get clean; rm -rf /var/lib/apt/lists/* /var/log/*.log /var/cache/apt/*.bin
        python3 -m venv /tmp/venv-check && rm -rf /tmp/venv-check
        command -v groupadd useradd >/dev/null' || die "installing python3 in $IMG_PYTHON failed"
    label --cmd python3 "$c"
    finish python "$recipe" "$IMG_PYTHON" "$c"
    log "python image in $((SECONDS - t0))s"
}

# --- images of single static binaries ----------------------------------------------
# build_binary_image KEY IMAGE BINARY FROM: /usr/local/bin/<binary> as the entrypoint
build_binary_image() {
    local key="$1" image="$2" bin="$3" from="$4" recipe c
    recipe="$(sha256sum "$ADDONS_BIN/$bin" | cut -c1-16) $from"
    fresh "$key" "$recipe" "$image" && return
    if [[ $from == scratch ]]; then c="$(buildah from scratch)"
    else c="$(buildah from --pull=false --tls-verify=false "$from")"; fi
    buildah copy --quiet --chmod 0755 "$c" "$ADDONS_BIN/$bin" "/usr/local/bin/$bin" >/dev/null
    label --entrypoint "[\"/usr/local/bin/$bin\"]" --cmd '' "$c"
    finish "$key" "$recipe" "$image" "$c"
}

t0=$SECONDS
build_debian
build_python
if [[ $what == all ]]; then
    "$CLUSTER_SCRIPTS/build-addons.sh"
    build_binary_image pause "$IMG_PAUSE" pause scratch
    build_binary_image coredns "$IMG_COREDNS" coredns scratch
    build_binary_image local-path "$IMG_LOCAL_PATH" local-path-provisioner "$IMG_DEBIAN"
fi
log "images ($what) in the registry ($((SECONDS - t0))s)"
