#!/bin/sh
# One entry point for a fresh Debian 12 machine (run as root, or with sudo
# available). Safe to repeat: it installs only what is missing.
#
#   ./run.sh demo    build, boot, stream and check the bundled model in QEMU
#   ./run.sh test    run the test suite
#   ./run.sh setup   only install the Debian and Python packages
#   ./run.sh hil ... any hil command inside the project's environment
set -eu
cd "$(dirname "$0")"

APT_PACKAGES="gcc gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm cmake ninja-build python3 python3-venv python3-dev"
VENV=${HIL_VENV:-.venv}

setup() {
    missing=""
    for p in $APT_PACKAGES; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "run.sh: installing Debian packages:$missing"
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    stamp="$VENV/.hil-installed"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -e ".[test]"
        touch "$stamp"
    fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    setup) setup ;;
    demo) setup; exec "$VENV/bin/hil" demo "$@" ;;
    test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
    hil) setup; exec "$VENV/bin/hil" "$@" ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
esac
