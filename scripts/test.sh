#!/usr/bin/env bash
# The project's whole test run: formatting, lints and every test, the
# behavioural ones on both a real PostgreSQL and the embedded SQLite store, with
# Chromium available for the browser tests, then the client libraries' tests and
# their conformance suite (scripts/conformance.sh), and the dashboard in headless Chromium
# (scripts/ui-tests.sh). A PostgreSQL test that finds no
# server fails here rather than skipping, as it would under a plain `cargo test`.
#
# Usage:
#   scripts/test.sh [ARGS...]              run everything; ARGS go to the `cargo test` of all
#                                          targets (e.g. a filter: `scripts/test.sh -- some_filter`)
#   scripts/test.sh --env-only -- CMD...   set up PostgreSQL and Chromium, then run CMD
#                                          with the exported environment instead of cargo
#
# PostgreSQL, first match wins:
#   1. $SEEDCORE_TEST_DATABASE_URL, $DATABASE_URL or $PG_DSN
#   2. a server on 127.0.0.1:5432 that user postgres can log in to and create databases on
#   3. a private throwaway cluster in a temp dir, removed on exit
#      (SEEDCORE_TEST_PRIVATE_PG=1 skips 2 and always uses this)
# The URL must allow `create database`: each test makes and drops its own database.
#
# The fault tests (tests/faults.rs) also start private clusters of their own from
# the server's binaries (installed here when missing) and mount a small tmpfs, so
# they need root or passwordless sudo; without either they fail and say so.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# Prints the URL with any password masked, for logs.
redact() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

# --- PostgreSQL ---------------------------------------------------------------

# True when the server on 127.0.0.1:5432 accepts user postgres without a
# password and that role may create databases. -w: never prompt (CI has no stdin).
local_server_usable() {
    command -v pg_isready >/dev/null && command -v psql >/dev/null || return 1
    PGCONNECT_TIMEOUT=3 pg_isready -q -h 127.0.0.1 -p 5432 || return 1
    local can_create
    can_create=$(PGCONNECT_TIMEOUT=3 psql -X -w -At -h 127.0.0.1 -p 5432 -U postgres -d postgres \
        -c 'select rolcreatedb or rolsuper from pg_roles where rolname = current_user' 2>/dev/null) || return 1
    [[ $can_create == t ]]
}

# Prints the bin dir of a PostgreSQL server install (the one holding initdb),
# newest version first; Debian keeps these off PATH.
find_pg_bindir() {
    local dir initdb
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV); do
        if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
            echo "$dir"
            return 0
        fi
    done
    if initdb=$(command -v initdb); then
        dir=$(dirname "$(readlink -f "$initdb")")
        [[ -x $dir/pg_ctl ]] && { echo "$dir"; return 0; }
    fi
    return 1
}

install_pg_server() {
    log "installing the PostgreSQL server with apt-get"
    # On recent Debian postgresql-contrib is just a metapackage (pg_trgm ships
    # in the server package); fall back to the server alone where it is missing.
    apt_install postgresql postgresql-contrib || apt_install postgresql
}

# initdb and postgres refuse to run as root, so as root the cluster belongs to
# the `postgres` system user (created by the Debian package) or to our own.
PG_OWNER=
pick_pg_owner() {
    if [[ $EUID -ne 0 ]]; then
        PG_OWNER=$(id -un)
    elif id -u postgres >/dev/null 2>&1; then
        PG_OWNER=postgres
    else
        PG_OWNER=seedcore-pg
        id -u "$PG_OWNER" >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OWNER"
    fi
}

# Runs a command as the cluster owner, from the cluster dir: the checkout may
# sit in a directory that user cannot enter (e.g. under /root).
as_pg_owner() {
    if [[ $EUID -eq 0 ]]; then
        (cd "$PG_DIR" && runuser -u "$PG_OWNER" -- "$@")
    else
        (cd "$PG_DIR" && "$@")
    fi
}

# First port from 55432 up that nothing on 127.0.0.1 listens on.
free_port() {
    local port
    for ((port = 55432; port < 56432; port++)); do
        if ! (: >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

PG_DIR=
PG_BIN=
stop_private_pg() {
    [[ -n $PG_DIR ]] || return 0
    if [[ -f $PG_DIR/data/postmaster.pid ]]; then
        as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 ||
            log "warning: could not stop the private PostgreSQL in $PG_DIR"
    fi
    rm -rf "$PG_DIR"
}

# Starts a fresh cluster that lives until this script exits and sets PG_URL
# to its admin URL.
PG_URL=
start_private_pg() {
    if ! PG_BIN=$(find_pg_bindir); then
        install_pg_server
        PG_BIN=$(find_pg_bindir) || die "no initdb found after installing PostgreSQL"
    fi
    pick_pg_owner

    # Under /tmp rather than $TMPDIR: the owner must reach it, and the socket
    # path (-k) has to stay short.
    PG_DIR=$(mktemp -d /tmp/seedcore-pg.XXXXXX)
    trap stop_private_pg EXIT
    chown "$PG_OWNER" "$PG_DIR"

    if ! as_pg_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres \
        --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1; then
        log "initdb with the C.UTF-8 locale failed, retrying with --no-locale"
        as_pg_owner rm -rf "$PG_DIR/data"
        as_pg_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres \
            --encoding=UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 ||
            { cat "$PG_DIR/initdb.log" >&2; die "initdb failed"; }
    fi

    local port
    port=$(free_port) || die "no free TCP port for PostgreSQL"
    # Durability is pointless for a throwaway cluster; turning it off speeds up
    # the many create/drop database calls. Tests run in parallel, each with its
    # own pool, hence the connection limit.
    as_pg_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
        -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        start >/dev/null || { cat "$PG_DIR/log" >&2; die "PostgreSQL did not start"; }

    PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

# The fault tests (tests/faults.rs) start and stop PostgreSQL clusters of their
# own, so they need the server's binaries even when the tests' server is elsewhere.
ensure_pg_binaries() {
    find_pg_bindir >/dev/null || install_pg_server
    find_pg_bindir >/dev/null || die "no initdb found after installing PostgreSQL"
}

setup_postgres() {
    local url source
    if [[ -n ${SEEDCORE_TEST_DATABASE_URL:-} ]]; then
        url=$SEEDCORE_TEST_DATABASE_URL source='SEEDCORE_TEST_DATABASE_URL'
    elif [[ -n ${DATABASE_URL:-} ]]; then
        url=$DATABASE_URL source='DATABASE_URL'
    elif [[ -n ${PG_DSN:-} ]]; then
        url=$PG_DSN source='PG_DSN'
    elif [[ ${SEEDCORE_TEST_PRIVATE_PG:-} != 1 ]] && local_server_usable; then
        url=postgres://postgres@127.0.0.1:5432/postgres source='local server on 127.0.0.1:5432'
    else
        start_private_pg
        url=$PG_URL source="private cluster in $PG_DIR"
    fi
    export SEEDCORE_TEST_DATABASE_URL=$url
    log "PostgreSQL: $source, $(redact "$url")"
}

# Runs one phase of the run (the rest of the arguments) and says how long it took, so that a
# slow run shows where its time went. A phase that fails ends the run here (set -e).
phase() {
    local name=$1 started=$SECONDS
    shift
    "$@"
    log "$name took $((SECONDS - started)) s"
}

# --- main ---------------------------------------------------------------------

# Make interrupts go through the EXIT trap, which stops a private cluster.
trap 'exit 130' INT
trap 'exit 143' TERM

if ! command -v cargo >/dev/null && [[ -x ${HOME:-}/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi

env_only=
if [[ ${1:-} == --env-only ]]; then
    env_only=1
    shift
    [[ ${1:-} == -- ]] && shift
    [[ $# -gt 0 ]] || die "usage: scripts/test.sh --env-only -- CMD [ARGS...]"
fi

phase "PostgreSQL setup" setup_postgres
phase "PostgreSQL binaries" ensure_pg_binaries
phase "Chromium setup" setup_chromium
log "Chromium: $SEEDCORE_CHROMIUM"
# There is a server now: a PostgreSQL test that cannot reach it fails, never skips.
export SEEDCORE_TEST_REQUIRE_POSTGRES=1

if [[ -n $env_only ]]; then
    "$@"
    exit
fi

run_started=$SECONDS
phase "formatting" cargo fmt --all -- --check
phase "lints" cargo clippy --all-targets --locked -- -D warnings
# --all-targets skips doctests, so they get their own run. It goes first so
# that the extra arguments (usually a filter) apply to the last, main run.
phase "doctests" cargo test --locked --doc
# Every test, both backends' variants in one run: none may be left out by a
# one-backend switch.
if [[ -n ${SEEDCORE_TEST_BACKEND:-} ]]; then
    log "ignoring SEEDCORE_TEST_BACKEND=$SEEDCORE_TEST_BACKEND: the whole run covers both backends"
    unset SEEDCORE_TEST_BACKEND
fi
phase "cargo tests" cargo test --locked --all-targets "$@"

# The client libraries: their own tests, then the conformance suite against their workers, on
# the binary the tests above built.
SEEDCORE_BIN=${CARGO_TARGET_DIR:-target}/debug/seedcore phase "client libraries and conformance" \
    scripts/conformance.sh

# The dashboard in headless Chromium, on the same binary.
SEEDCORE_BIN=${CARGO_TARGET_DIR:-target}/debug/seedcore phase "dashboard in Chromium" \
    scripts/ui-tests.sh

# The API against its own OpenAPI document, on both backends.
phase "API against its OpenAPI document" scripts/schemathesis.sh
log "tests and checks took $((SECONDS - run_started)) s in all"
