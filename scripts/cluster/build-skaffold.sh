#!/usr/bin/env bash
# Build skaffold from Go modules (no prebuilt download) into $STOCKSTREAM_CACHE/bin and give
# it a global config that never calls outside hosts. Prints the binary's path on stdout.
#
# `go install github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold@v2.16.1` is refused
# (skaffold's go.mod has replace directives), so this writes a small main module that requires
# skaffold and repeats skaffold's own `replace` lines, with a tools.go that blank-imports the
# command. Idempotent: a finished build is reused (stamp file); concurrent callers wait on a
# lock. About 5 min and 2.6 GB of modules on 2 cores with empty caches.
set -euo pipefail

SKAFFOLD_VERSION="${SKAFFOLD_VERSION:-v2.16.1}"
CACHE="${STOCKSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stockstream}"
BIN="$CACHE/bin"
OUT="$CACHE/skaffold/$SKAFFOLD_VERSION"
MODULE=github.com/GoogleContainerTools/skaffold/v2

log() { printf '[build-skaffold] %s\n' "$*" >&2; }
die() { printf '[build-skaffold] ERROR: %s\n' "$*" >&2; exit 1; }

# The global config: no update check, no metrics, no survey prompt (each would reach a host
# outside the machine). Written every time: cheap, and repairs a user-edited file.
write_global_config() {
    local dir="${HOME}/.skaffold"
    mkdir -p "$dir"
    cat >"$dir/config.tmp" <<'EOF'
global:
  update-check: false
  collect-metrics: false
  survey:
    disable-prompt: true
kubeContexts: []
EOF
    mv "$dir/config.tmp" "$dir/config"
}

command -v go >/dev/null || die "Go is needed (Debian: apt-get install golang-go >= 1.24, or go.dev)"
mkdir -p "$OUT" "$BIN"
exec 9>"$OUT/.lock"
flock 9
write_global_config

stamp="skaffold $SKAFFOLD_VERSION"
if [[ -x $BIN/skaffold && -f $OUT/.stamp && "$(cat "$OUT/.stamp")" == "$stamp" ]]; then
    echo "$BIN/skaffold"
    exit 0
fi

t0=$SECONDS
mod="$OUT/module"
rm -rf "$mod" && mkdir -p "$mod"
cd "$mod"
info="$(go mod download -json "$MODULE@$SKAFFOLD_VERSION")" \
    || die "cannot download $MODULE@$SKAFFOLD_VERSION from the Go module proxy"
upstream_mod="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$info")"
commit="$(sed -n 's/.*"Hash": "\([0-9a-f]*\)".*/\1/p' <<<"$info")"
{
    echo "module stockstream.local/skaffold-build"
    echo
    echo "go 1.24.1"
    echo
    echo "require $MODULE $SKAFFOLD_VERSION"
    echo
    # skaffold's own replace lines (shellescape, mergo, docker/docker, docker/cli, viper,
    # buildpacks/lifecycle): without them its packages do not compile.
    grep -E '^replace ' "$upstream_mod"
} >go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "%s/cmd/skaffold"\n' "$MODULE" >tools.go
[[ $(grep -c '^replace ' go.mod) -ge 6 ]] || die "expected skaffold's six replace lines in $upstream_mod"
log "resolving modules ($MODULE $SKAFFOLD_VERSION)"
GOFLAGS="-mod=mod -tags=tools" go mod tidy >/dev/null 2>"$OUT/tidy.log" \
    || { tail -n 30 "$OUT/tidy.log" >&2; die "go mod tidy failed"; }

v="$MODULE/pkg/skaffold/version"
ldflags="-s -w -X $v.version=$SKAFFOLD_VERSION -X $v.gitCommit=$commit -X $v.buildDate=1970-01-01T00:00:00Z"
log "building skaffold (about 5 min on 2 cores)"
CGO_ENABLED=0 go build -trimpath -tags=tools -ldflags="$ldflags" -o "$OUT/skaffold.tmp" \
    "$MODULE/cmd/skaffold" || die "go build failed"
mv "$OUT/skaffold.tmp" "$BIN/skaffold"
echo "$stamp" >"$OUT/.stamp"
log "built $("$BIN/skaffold" version) into $BIN in $((SECONDS - t0))s"
echo "$BIN/skaffold"
