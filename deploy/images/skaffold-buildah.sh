#!/usr/bin/env bash
# skaffold custom builder of the `stockstream` image for the local test cluster (profile
# local-cluster): the same Dockerfile users build, with a base image made locally instead of
# python:3.12-slim (PYTHON_IMAGE), built by buildah without a daemon and pushed to the local
# registry the cluster pulls from. skaffold sets IMAGE, BUILD_CONTEXT and PUSH_IMAGE.
set -euo pipefail

: "${IMAGE:?skaffold sets IMAGE}"
: "${BUILD_CONTEXT:?skaffold sets BUILD_CONTEXT}"
PYTHON_IMAGE="${STOCKSTREAM_PYTHON_IMAGE:-localhost:5000/stockstream/python:3.11}"

command -v buildah >/dev/null || { echo "buildah is needed" >&2; exit 1; }
# The machine's CA bundle, mounted over the base image's only while RUN steps execute (pip
# reads it there on Debian): pip then works behind a TLS-inspecting proxy the host trusts.
# Nothing of it is committed to the image.
mounts=()
ca=/etc/ssl/certs/ca-certificates.crt
[[ -f $ca ]] && mounts=(--volume "$ca:$ca:ro")
# --layers: a code change reuses the dependency layers (skaffold dev rebuilds in seconds).
buildah bud --isolation chroot --layers --tls-verify=false --format docker "${mounts[@]}" \
    --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" \
    -f "$BUILD_CONTEXT/Dockerfile" -t "$IMAGE" "$BUILD_CONTEXT"
if [[ ${PUSH_IMAGE:-false} == true ]]; then
    buildah push --tls-verify=false "$IMAGE" "docker://$IMAGE"
fi
