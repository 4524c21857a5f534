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
# The run is bounded: past UI_TESTS_TIMEOUT seconds (default 300) it is stopped and fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

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
setup_node 20
setup_binary
(cd ui-tests && npm ci --no-audit --no-fund --loglevel=error)
mkdir -p target/ui-screenshots
log "Chromium: $SEEDCORE_CHROMIUM; seedcore: $SEEDCORE_BIN"
cd ui-tests
exec timeout --kill-after=10 "${UI_TESTS_TIMEOUT:-300}" \
    node --test --test-concurrency=1 --test-timeout=60000 "$@" tests/
