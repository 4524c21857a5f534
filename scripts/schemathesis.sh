#!/usr/bin/env bash
# Property-based tests of the HTTP API against its own OpenAPI document: schemathesis generates
# requests from /openapi.json (valid and invalid ones), sends them to `seedcore serve` and checks
# every answer against the document (statuses, shapes, refusals of invalid input, acceptance of
# valid input). It runs on a fresh SQLite file and on a fresh PostgreSQL database with an admin
# token (every operation allowed), and once more on PostgreSQL with a viewer token (writes answer
# 403; which calls a role may make does not depend on the backend), and fails on any failure. With tokens stored, the check that secured operations refuse
# calls without one (ignored_auth) applies too.
#
# Usage: scripts/schemathesis.sh [sqlite|postgres]...   (default: both)
#
# PostgreSQL: the server named by $SEEDCORE_TEST_DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/postgres); a database is created there for the run and
# dropped after it. schemathesis is installed, pinned, into a virtual environment under the cargo
# target directory the first time.
#
# Knobs: SCHEMATHESIS_MAX_EXAMPLES (default 30 per operation), SCHEMATHESIS_SEED (default 1),
# SCHEMATHESIS_TIMEOUT (seconds per run, default 150).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

SCHEMATHESIS_VERSION=4.32.5
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
VENV=$TARGET_DIR/schemathesis-venv
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-30}
SEED=${SCHEMATHESIS_SEED:-1}
RUN_TIMEOUT=${SCHEMATHESIS_TIMEOUT:-150}
ADMIN_URL=${SEEDCORE_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# --- schemathesis ---------------------------------------------------------------------------

# A virtual environment with the pinned schemathesis; Debian ships python3 without venv (and
# ensurepip), so that comes from apt-get when missing.
install_schemathesis() {
    if [[ -x $VENV/bin/schemathesis ]] &&
        [[ $("$VENV/bin/schemathesis" --version 2>/dev/null) == *" $SCHEMATHESIS_VERSION" ]]; then
        return
    fi
    command -v python3 >/dev/null || apt_install python3
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        rm -rf "$VENV"
        log "installing python3-venv with apt-get"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
    log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"
}

# --- the server -------------------------------------------------------------------------------

WORK=
SERVER_PID=
DATABASE=

cleanup() {
    stop_server
    if [[ -n $DATABASE ]]; then
        psql -X -q -w "$ADMIN_URL" -c "drop database if exists \"$DATABASE\" with (force)" >/dev/null 2>&1 ||
            log "warning: could not drop database $DATABASE"
    fi
    [[ -n $WORK ]] && rm -rf "$WORK"
}

stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# `seedcore ARGS` with the given database settings only.
seedcore() {
    env -u PG_DSN -u DATABASE_URL -u POSTGRES_HOST -u POSTGRES_PORT -u POSTGRES_DB \
        -u POSTGRES_USER -u POSTGRES_PASSWORD "$SEEDCORE" "$@"
}

# Creates an admin and a viewer token in the database of the given settings (flags of
# `seedcore token`); sets ADMIN_TOKEN and VIEWER_TOKEN. Names carry a random part so that
# generated DELETE /tokens/{token} requests cannot revoke them by name.
ADMIN_TOKEN=
VIEWER_TOKEN=
create_tokens() {
    local suffix=$RANDOM$RANDOM
    ADMIN_TOKEN=$(seedcore token "$@" create --name "schemathesis-admin-$suffix" --role admin)
    VIEWER_TOKEN=$(seedcore token "$@" create --name "schemathesis-viewer-$suffix" --role viewer)
}

# Starts `seedcore serve` on a free port with the given database settings (and no inherited
# ones) and waits until it answers; sets BASE_URL. No rate limit: schemathesis is a busy client.
BASE_URL=
start_server() {
    local port log_file=$WORK/server-$1.log
    shift
    port=$(free_port)
    env -u PG_DSN -u DATABASE_URL -u POSTGRES_HOST -u POSTGRES_PORT -u POSTGRES_DB \
        -u POSTGRES_USER -u POSTGRES_PASSWORD \
        "$SEEDCORE" serve --host 127.0.0.1 --port "$port" --worker-concurrency 4 \
        --rate-limit-per-second 0 "$@" \
        >"$log_file" 2>&1 &
    SERVER_PID=$!
    BASE_URL=http://127.0.0.1:$port
    local i
    for ((i = 0; i < 300; i++)); do
        if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
            "$BASE_URL/readyz" 2>/dev/null; then
            return
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log_file" >&2; die "seedcore serve exited"; }
        sleep 0.2
    done
    cat "$log_file" >&2
    die "seedcore serve did not become ready on port $port"
}

# --- runs ---------------------------------------------------------------------------------------

# Runs schemathesis against the server at BASE_URL; the rules no schema can state are filtered by
# the hooks in scripts/schemathesis_hooks.py. The event stream is left out: it stays open by
# design (heartbeats, no end), so every generated call would last the whole request timeout
# and the run its time budget; tests/events.rs drives it, its refusals included, instead.
run_schemathesis() {
    local name=$1 token=$2
    log "$name: schemathesis --checks all, $MAX_EXAMPLES examples per operation, seed $SEED"
    # Its example database and reports go to the scratch folder, not the checkout.
    (
        cd "$WORK"
        PYTHONPATH=$ROOT/scripts SCHEMATHESIS_HOOKS=schemathesis_hooks \
            timeout "$RUN_TIMEOUT" "$VENV/bin/schemathesis" run "$BASE_URL/openapi.json" \
            --url "$BASE_URL" \
            --header "Authorization: Bearer $token" \
            --checks all \
            --max-examples "$MAX_EXAMPLES" \
            --seed "$SEED" \
            --generation-allow-x00 false \
            --generation-database none \
            --request-timeout 10 \
            --exclude-path /api/v1/events \
            --no-color
    )
}

run_sqlite() {
    create_tokens --data-dir "$WORK/sqlite-data"
    start_server sqlite --data-dir "$WORK/sqlite-data"
    run_schemathesis "sqlite, admin token" "$ADMIN_TOKEN"
    stop_server
}

run_postgres() {
    command -v psql >/dev/null || apt_install postgresql-client
    DATABASE=seedcore_schemathesis_$$
    psql -X -q -w "$ADMIN_URL" -c "create database \"$DATABASE\"" >/dev/null ||
        die "cannot create a database on $(sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$ADMIN_URL")"
    local url
    url=$(python3 -c '
import sys, urllib.parse
parts = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(parts._replace(path="/" + sys.argv[2])))' "$ADMIN_URL" "$DATABASE")
    create_tokens --pg-dsn "$url"
    start_server postgres --pg-dsn "$url"
    run_schemathesis "postgres, admin token" "$ADMIN_TOKEN"
    run_schemathesis "postgres, viewer token" "$VIEWER_TOKEN"
    stop_server
    psql -X -q -w "$ADMIN_URL" -c "drop database if exists \"$DATABASE\" with (force)" >/dev/null
    DATABASE=
}

# --- main ---------------------------------------------------------------------------------------

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! command -v cargo >/dev/null && [[ -x ${HOME:-}/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi

backends=("$@")
[[ ${#backends[@]} -gt 0 ]] || backends=(sqlite postgres)

install_schemathesis
cargo build --locked --quiet --bin seedcore
SEEDCORE=$TARGET_DIR/debug/seedcore
WORK=$(mktemp -d "${TMPDIR:-/tmp}/seedcore-schemathesis.XXXXXX")

for backend in "${backends[@]}"; do
    case $backend in
        sqlite) run_sqlite ;;
        postgres) run_postgres ;;
        *) die "unknown backend '$backend' (sqlite or postgres)" ;;
    esac
done
log "no failures on: ${backends[*]}"
