#!/usr/bin/env bash
# The dashboard's end-to-end tests: headless Chromium (Debian's package) driven by
# Playwright (playwright-core from the npm registry, pinned in ui-tests/package-lock.json)
# against real `seedcore serve` processes, one per test file, each on embedded SQLite in a
# temporary folder. Screenshots go to target/ui-screenshots/.
#
# Usage: scripts/ui-tests.sh [NODE_TEST_ARGS...]
#
# Installs what is missing: Chromium with apt-get, the npm packages with `npm ci`. Needs
# Node.js 20 or later (installed with apt-get when there is none). Builds the binary with
# cargo unless SEEDCORE_BIN names one. SEEDCORE_CHROMIUM names another browser binary.
# The run is bounded: past UI_TESTS_TIMEOUT seconds (default 150) it is stopped and fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'ui-tests.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo -n "$@"
    else
        die "need root or sudo to run: $*"
    fi
}

APT_UPDATED=
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o Acquire::Retries=3 -o DPkg::Lock::Timeout=300)
    if [[ -z $APT_UPDATED ]]; then
        as_root "${apt[@]}" update
        APT_UPDATED=1
    fi
    as_root "${apt[@]}" install -y --no-install-recommends "$@"
}

setup_chromium() {
    if [[ -n ${SEEDCORE_CHROMIUM:-} ]]; then
        [[ -x $SEEDCORE_CHROMIUM ]] || die "SEEDCORE_CHROMIUM=$SEEDCORE_CHROMIUM is not executable"
        return
    fi
    if ! command -v chromium >/dev/null; then
        log "installing Chromium with apt-get"
        apt_install chromium
    fi
    SEEDCORE_CHROMIUM=$(command -v chromium)
    export SEEDCORE_CHROMIUM
}

setup_node() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        log "installing Node.js with apt-get"
        apt_install nodejs npm
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    ((major >= 20)) || die "Node.js $(node --version) is too old: the tests need 20 or later"
}

setup_binary() {
    if [[ -n ${SEEDCORE_BIN:-} ]]; then
        [[ -x $SEEDCORE_BIN ]] || die "SEEDCORE_BIN=$SEEDCORE_BIN is not executable"
        # The tests run from ui-tests/: a relative path would point nowhere there.
        SEEDCORE_BIN=$(realpath "$SEEDCORE_BIN")
        export SEEDCORE_BIN
        return
    fi
    cargo build --locked -p seedcore --bin seedcore
    SEEDCORE_BIN=$(realpath "${CARGO_TARGET_DIR:-target}/debug/seedcore")
    export SEEDCORE_BIN
}

setup_chromium
setup_node
setup_binary
(cd ui-tests && npm ci --no-audit --no-fund --loglevel=error)
mkdir -p target/ui-screenshots
log "Chromium: $SEEDCORE_CHROMIUM; seedcore: $SEEDCORE_BIN"
cd ui-tests
exec timeout --kill-after=10 "${UI_TESTS_TIMEOUT:-150}" \
    node --test --test-concurrency=1 --test-timeout=60000 "$@" tests/
