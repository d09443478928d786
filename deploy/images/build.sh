#!/usr/bin/env bash
# Build the third-party images of the local test cluster from Debian packages and Maven
# Central jars (never Docker Hub) with buildah, and push them to the local registry:
#   kafka       Apache Kafka 3.9.1 in KRaft mode (Debian's Java 17 JRE + scripts/kafka/pom.xml)
#   redis       Debian's redis-server
#   prometheus  Prometheus built from the Go module proxy with Kubernetes discovery
#               (scripts/install-prometheus.sh), the release users pull
#   alertmanager  Debian's prometheus-alertmanager
#   opensearch  OpenSearch 2.19.6 (Debian's Java 17 JRE + the Maven Central zip,
#               scripts/install-opensearch.sh)
#   filebeat    Filebeat OSS 7.12.1 built from the Go module proxy (scripts/install-filebeat.sh)
# Usage: deploy/images/build.sh [name...]   (default: all); prints one image per line.
#
# Idempotent: an image whose recipe (its directory, the base image, the jars) is unchanged and
# still in the registry is not rebuilt. The names and tags are the ones
# deploy/kustomize/overlays/local-cluster swaps in.
#
# Environment: STOCKSTREAM_REGISTRY [localhost:5000], STOCKSTREAM_BASE_IMAGE
# [$REGISTRY/stockstream/debian:bookworm, made by scripts/cluster], STOCKSTREAM_CACHE.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
REGISTRY="${STOCKSTREAM_REGISTRY:-localhost:5000}"
BASE_IMAGE="${STOCKSTREAM_BASE_IMAGE:-$REGISTRY/stockstream/debian:bookworm}"
CACHE="${STOCKSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stockstream}"
WORK="$CACHE/deploy-images"
declare -A TAGS=([kafka]=3.9.1 [redis]=7.0 [prometheus]=3.16.0 [alertmanager]=0.25
                 [opensearch]=2.19.6 [filebeat]=7.12.1)
# The script that makes what build_context copies into an image, by image.
declare -A INSTALLERS=([prometheus]=install-prometheus.sh [opensearch]=install-opensearch.sh
                       [filebeat]=install-filebeat.sh)

log() { printf '[deploy/images] %s\n' "$*" >&2; }
die() { printf '[deploy/images] ERROR: %s\n' "$*" >&2; exit 1; }

command -v buildah >/dev/null || die "buildah is needed (scripts/cluster/install-packages.sh installs it)"
registry_url="http://${REGISTRY/localhost/127.0.0.1}"
curl -fsS "$registry_url/v2/" >/dev/null || die "no registry at $registry_url (start the cluster: scripts/cluster/up.sh)"

# The manifest digest of repo:tag in the registry, or nothing.
registry_digest() {
    curl -fsSI -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        "$registry_url/v2/$1/manifests/$2" 2>/dev/null \
        | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p' || true
}

# The build context of one image (kafka gets the jars) -> prints its directory.
context() {
    local name=$1 ctx="$WORK/$1/context"
    rm -rf "$ctx" && mkdir -p "$ctx"
    cp -a "$HERE/$name/." "$ctx/"
    if [[ $name == kafka ]]; then
        mvn -q -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
            -DoutputDirectory="$ctx/libs" >&2 || die "fetching the Kafka jars with Maven failed"
    fi
    if [[ $name == prometheus ]]; then
        local dir
        dir="$(installed prometheus)"
        mkdir -p "$ctx/bin"
        cp "$dir/prometheus" "$dir/promtool" "$ctx/bin/"
    fi
    if [[ $name == opensearch ]]; then
        local home
        home="$(installed opensearch | cut -d' ' -f1)"
        cp -a "$home" "$ctx/opensearch"
    fi
    if [[ $name == filebeat ]]; then
        mkdir -p "$ctx/bin"
        cp "$(installed filebeat)" "$ctx/bin/filebeat"
    fi
    echo "$ctx"
}

# What an image's install script made (built once, cached): its last line on stdout.
installed() {
    "$ROOT/scripts/${INSTALLERS[$1]}" | tail -n 1
}

build_one() {
    local name=$1 tag=${TAGS[$1]} repo="stockstream/$1"
    local image="$REGISTRY/$repo:$tag" stamp="$WORK/$name/stamp"
    mkdir -p "$WORK/$name"
    local recipe
    recipe="$( { (cd "$HERE/$name" && find . -type f | sort | xargs sha256sum);
                 echo "$BASE_IMAGE"; cat "$ROOT/scripts/kafka/pom.xml";
                 if [[ -n ${INSTALLERS[$name]:-} ]]; then sha256sum "$ROOT/scripts/${INSTALLERS[$name]}"; fi
               } | sha256sum | cut -c1-16)"
    local have
    have="$(registry_digest "$repo" "$tag")"
    if [[ -n $have && -f $stamp && "$(cat "$stamp")" == "$recipe $have" ]]; then
        log "$image is up to date ($have)"
        echo "$image"
        return
    fi
    local t0=$SECONDS ctx
    ctx="$(context "$name")"
    log "building $image from $BASE_IMAGE"
    buildah bud --isolation chroot --layers --tls-verify=false --format docker \
        --build-arg "BASE_IMAGE=$BASE_IMAGE" --label "io.stockstream.recipe=$recipe" \
        -f "$ctx/Containerfile" -t "$image" "$ctx" >"$WORK/$name/build.log" 2>&1 \
        || { tail -n 40 "$WORK/$name/build.log" >&2; die "building $image failed"; }
    buildah push --tls-verify=false "$image" "docker://$image" >>"$WORK/$name/build.log" 2>&1 \
        || { tail -n 20 "$WORK/$name/build.log" >&2; die "pushing $image failed"; }
    have="$(registry_digest "$repo" "$tag")"
    [[ -n $have ]] || die "$image is not in the registry after the push"
    echo "$recipe $have" >"$stamp"
    log "built and pushed $image in $((SECONDS - t0))s"
    echo "$image"
}

names=("$@")
((${#names[@]})) || names=(kafka redis prometheus alertmanager opensearch filebeat)
mkdir -p "$WORK"
exec 9>"$WORK/.lock"
flock 9
for name in "${names[@]}"; do
    [[ -n ${TAGS[$name]:-} ]] || die "unknown image '$name' (${!TAGS[*]})"
    build_one "$name"
done
