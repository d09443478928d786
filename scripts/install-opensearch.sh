#!/usr/bin/env bash
# Install OpenSearch (Apache-2.0; the integ-test distribution zip from Maven Central) into
# $STOCKSTREAM_CACHE/opensearch/<version>/opensearch-<version> and, when run as root, the
# unprivileged system user `stockstream-search` that runs it (OpenSearch refuses to run as
# root). Prints "<install dir> <user>" as the last line on stdout. Used by the log-search test
# (tests/opensearch_support.py); idempotent, concurrent callers wait on a lock.
#
# 2.19.6 is the newest release that runs on Java 17 (3.x needs Java 21). The integ-test zip
# carries only the transport module: no ingest pipelines or painless, which the tests do not
# need (Filebeat decodes the JSON lines itself).
set -euo pipefail

OPENSEARCH_VERSION="${OPENSEARCH_VERSION:-2.19.6}"
OPENSEARCH_USER="${OPENSEARCH_USER:-stockstream-search}"
CACHE="${STOCKSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stockstream}"
OUT="$CACHE/opensearch/$OPENSEARCH_VERSION"
HOME_DIR="$OUT/opensearch-$OPENSEARCH_VERSION"
ARTIFACT="org.opensearch.distribution.integ-test-zip:opensearch:$OPENSEARCH_VERSION:zip"

log() { printf '[install-opensearch] %s\n' "$*" >&2; }
die() { printf '[install-opensearch] ERROR: %s\n' "$*" >&2; exit 1; }

command -v java >/dev/null || die "java is needed (scripts/bootstrap.sh installs default-jre-headless)"
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9

if [[ ! -x $HOME_DIR/bin/opensearch || ! -f $OUT/.stamp || "$(cat "$OUT/.stamp")" != "$ARTIFACT" ]]; then
    command -v mvn >/dev/null || die "mvn is needed (scripts/bootstrap.sh installs maven)"
    command -v unzip >/dev/null || command -v python3 >/dev/null || die "unzip or python3 is needed"
    t0=$SECONDS
    log "fetching $ARTIFACT with Maven"
    rm -rf "$OUT/zip" "$HOME_DIR"
    if ! mvn -q -B dependency:copy -Dartifact="$ARTIFACT" -DoutputDirectory="$OUT/zip" \
            >"$OUT/mvn.log" 2>&1; then
        sed 's/\x1b\[[0-9;]*m//g' "$OUT/mvn.log" | tail -n 30 >&2
        die "mvn dependency:copy $ARTIFACT failed"
    fi
    zip="$OUT/zip/opensearch-$OPENSEARCH_VERSION.zip"
    [[ -f $zip ]] || die "no $zip after mvn dependency:copy"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
        "$zip" "$OUT"
    chmod +x "$HOME_DIR"/bin/*
    [[ -x $HOME_DIR/bin/opensearch ]] || die "unexpected zip layout: no $HOME_DIR/bin/opensearch"
    rm -rf "$OUT/zip"
    echo "$ARTIFACT" >"$OUT/.stamp"
    log "installed $HOME_DIR ($((SECONDS - t0))s)"
fi

user="$(id -un)"
if ((EUID == 0)); then
    if ! id -u "$OPENSEARCH_USER" >/dev/null 2>&1; then
        log "creating system user $OPENSEARCH_USER (OpenSearch refuses to run as root)"
        useradd --system --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$OPENSEARCH_USER" || die "useradd $OPENSEARCH_USER failed"
    fi
    user="$OPENSEARCH_USER"
    command -v setpriv >/dev/null || die "setpriv is needed to start OpenSearch as $user (util-linux)"
fi
echo "$HOME_DIR $user"
