#!/usr/bin/env bash
# The clients' test run: each client's own tests, then the conformance suite (conformance/)
# against both clients' workers on a real server. Installs what is missing: python3 with its
# venv module, Node.js with npm and psql from Debian's packages; the Python client into a
# virtual environment under target/conformance/venv (again whenever the client changed); the
# TypeScript client's packages with `npm ci` (again whenever its lock file changed), then its
# build.
#
# Usage:
#   scripts/conformance.sh [ARGS...]        ARGS go to conformance/run.py (e.g. --scenario fence)
#
# Needs SEEDCORE_TEST_DATABASE_URL, an admin URL of a PostgreSQL server that may create
# databases (scripts/test.sh exports one; alone: scripts/test.sh --env-only -- scripts/conformance.sh).
# SEEDCORE_BIN is the server binary (default target/debug/seedcore, built when missing).
# CONFORMANCE_CLIENTS picks the clients (default "python typescript").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# A digest of a directory's files (caches and build output left out): what a stamp records.
digest() {
    find "$@" -type f \
        -not -path '*/__pycache__/*' -not -path '*/node_modules/*' -not -path '*.egg-info/*' \
        -not -path '*/build/*' -not -path '*/dist/*' -print0 |
        sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

VENV=target/conformance/venv

setup_python() {
    command -v python3 >/dev/null || { log "installing python3 with apt-get"; apt_install python3; }
    if [[ ! -x $VENV/bin/python ]]; then
        # Debian ships the venv module (and its pip) in a package of its own.
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            log "installing python3-venv with apt-get"
            rm -rf "$VENV"
            apt_install python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    local stamp=$VENV/.seedcore-client.sha256 now
    now=$(digest clients/python)
    if [[ ! -f $stamp || $(<"$stamp") != "$now" ]]; then
        log "installing clients/python into $VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall ./clients/python
        echo "$now" >"$stamp"
    fi
}

setup_typescript() {
    setup_node 18
    local stamp=clients/typescript/node_modules/.seedcore-lock.sha256 now
    now=$(sha256sum clients/typescript/package-lock.json | cut -d' ' -f1)
    if [[ ! -f $stamp || $(<"$stamp") != "$now" ]]; then
        log "npm ci in clients/typescript"
        (cd clients/typescript && npm ci --no-audit --no-fund)
        echo "$now" >"$stamp"
    fi
    (cd clients/typescript && npm run --silent build)
}

command -v psql >/dev/null || { log "installing psql with apt-get"; apt_install postgresql-client; }
[[ -n ${SEEDCORE_TEST_DATABASE_URL:-} ]] ||
    die "set SEEDCORE_TEST_DATABASE_URL, or run: scripts/test.sh --env-only -- scripts/conformance.sh"

SEEDCORE_BIN=${SEEDCORE_BIN:-${CARGO_TARGET_DIR:-target}/debug/seedcore}
if [[ ! -x $SEEDCORE_BIN ]]; then
    log "building $SEEDCORE_BIN"
    cargo build --locked -p seedcore --bin seedcore
fi
SEEDCORE_BIN=$(realpath "$SEEDCORE_BIN")
export SEEDCORE_BIN

read -r -a clients <<<"${CONFORMANCE_CLIENTS:-python typescript}"
suite_args=()
for client in "${clients[@]}"; do
    [[ -d clients/$client ]] || die "no clients/$client"
    suite_args+=(--client "$client")
    case $client in
    python)
        setup_python
        log "the Python client's tests"
        "$VENV/bin/python" -m unittest discover -s clients/python/tests
        ;;
    typescript)
        setup_typescript
        log "the TypeScript client's tests"
        (cd clients/typescript && npm test)
        ;;
    *) die "unknown client $client" ;;
    esac
done

log "the conformance suite"
# The venv's interpreter by its own path: resolving the link would leave the venv.
CONFORMANCE_PYTHON=$PWD/$VENV/bin/python python3 conformance/run.py "${suite_args[@]}" "$@"
