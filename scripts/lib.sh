# What the scripts under scripts/ share: their log lines, running a command as root, installing
# Debian packages, and finding (or installing) Chromium and Node.js. Sourced, not run; the
# sourcing script has `set -euo pipefail` and its name goes on every log line.

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Runs a command as root, through sudo when we are not root (CI runners often aren't).
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
# Installs Debian packages non-interactively, updating the package lists once per script; the
# lock timeout rides out a concurrent unattended upgrade on a fresh machine.
apt_install() {
    command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o Acquire::Retries=3 -o DPkg::Lock::Timeout=300)
    if [[ -z $APT_UPDATED ]]; then
        as_root "${apt[@]}" update || return
        APT_UPDATED=1
    fi
    as_root "${apt[@]}" install -y --no-install-recommends "$@"
}

# Exports SEEDCORE_CHROMIUM: the one named there, else Debian's Chromium (installed when
# missing), checked to run headless so that missing libraries show here, not as test failures.
setup_chromium() {
    if [[ -n ${SEEDCORE_CHROMIUM:-} ]]; then
        [[ -x $SEEDCORE_CHROMIUM ]] || die "SEEDCORE_CHROMIUM=$SEEDCORE_CHROMIUM is not executable"
        return
    fi
    if [[ ! -x /usr/bin/chromium ]] && ! command -v chromium >/dev/null; then
        log "installing Chromium with apt-get"
        apt_install chromium
    fi
    local chromium err
    chromium=$(command -v chromium || echo /usr/bin/chromium)
    [[ -x $chromium ]] || die "chromium not found after installing it"
    err=$(timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --dump-dom about:blank 2>&1 >/dev/null) ||
        { printf '%s\n' "$err" >&2; die "$chromium does not run headless"; }
    export SEEDCORE_CHROMIUM=$chromium
}

# Node.js and npm (installed with apt-get when missing), at least major version $1.
setup_node() {
    local wanted=$1 major
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        log "installing Node.js and npm with apt-get"
        apt_install nodejs npm
    fi
    major=$(node -p 'process.versions.node.split(".")[0]')
    ((major >= wanted)) || die "Node.js $(node --version) is too old: $wanted or later is needed"
}
