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

APT_PACKAGES="gcc gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm cmake ninja-build python3 python3-venv python3-dev gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc"
# only for the test suite: a real PostgreSQL server for the result store tests,
# Chromium to render the HTML report (tests/test_reports.py), clang and its
# libFuzzer runtime for the firmware fuzzers (tests/test_fuzz.py), and the
# Arm C++ library the TFLM engine builds need (tests/test_build_tflm.py)
TEST_APT_PACKAGES="postgresql chromium clang libclang-rt-14-dev libstdc++-arm-none-eabi-newlib"
VENV=${HIL_VENV:-.venv}

setup() {
    missing=""
    for p in $APT_PACKAGES ${EXTRA_APT_PACKAGES:-}; do
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
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
        "$VENV/bin/python" -m pip install -q --upgrade pip
        # constraints.txt: the exact versions the results were checked with (README "Pinned versions")
        "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[test]"
        touch "$stamp"
    fi
}

# Start the local PostgreSQL cluster and make a throw-away role and database
# for tests/test_store.py (HIL_TEST_POSTGRES_URL); idempotent.
start_postgres() {
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    version=$(ls /usr/lib/postgresql | sort -n | tail -1)
    if ! pg_lsclusters -h 2>/dev/null | grep -q " online"; then
        pg_lsclusters -h | grep -q "^$version " || $SUDO pg_createcluster "$version" main >/dev/null
        $SUDO pg_ctlcluster "$version" main start
    fi
    psql_as_postgres() { $SUDO su postgres -c "psql -qtAc \"$1\""; }
    [ "$(psql_as_postgres "SELECT 1 FROM pg_roles WHERE rolname='hil_test'")" = "1" ] ||
        psql_as_postgres "CREATE ROLE hil_test LOGIN PASSWORD 'hil_test'"
    [ "$(psql_as_postgres "SELECT 1 FROM pg_database WHERE datname='hil_test'")" = "1" ] ||
        psql_as_postgres "CREATE DATABASE hil_test OWNER hil_test"
    export HIL_TEST_POSTGRES_URL="postgresql://hil_test:hil_test@127.0.0.1:$(pg_lsclusters -h | awk -v v="$version" '$1==v{print $3; exit}')/hil_test"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    setup) setup ;;
    demo) setup; exec "$VENV/bin/hil" demo "$@" ;;
    test) EXTRA_APT_PACKAGES="$TEST_APT_PACKAGES" setup; "$VENV/bin/ruff" check harness tests benchmarks scripts
          "$VENV/bin/python" -m mypy  # what it checks: [tool.mypy] in pyproject.toml
          start_postgres; exec "$VENV/bin/python" -m pytest -m "slow or not slow" --durations=25 "$@" ;;
    hil) setup; exec "$VENV/bin/hil" "$@" ;;
    *) sed -n '2,9p' "$0"; exit 2 ;;
esac
