#!/usr/bin/env bash
# billsync developer entry point.
#   ./dev.sh sandbox          install dependencies, build, run the daemon on the bundled sandbox
#   ./dev.sh test             install dependencies, build with gcc, run the whole test suite
#   ./dev.sh test --asan      the same with clang + AddressSanitizer/UndefinedBehaviorSanitizer
#   ./dev.sh build [preset]   build only (default preset: dev)
set -euo pipefail
cd "$(dirname "$0")"

cmd=${1:-}
shift || true
jobs=$(nproc)
# ccache shares results between checkouts in different directories (CI builds a fresh clone):
# paths are hashed relative to the checkout, and the working directory is left out of the hash.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

build() { # preset
    local preset=$1
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset" -j "$jobs"
}

case "$cmd" in
sandbox)
    scripts/install-deps.sh
    build dev
    exec build/dev/daemon/billsync sandbox "$@"
    ;;
test)
    preset=ci-gcc
    if [[ "${1:-}" == "--asan" ]]; then
        preset=ci-clang-asan
        scripts/install-deps.sh --clang
    else
        scripts/install-deps.sh
    fi
    build "$preset"
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    # A failed test is run once more before it counts (followup_e2e.a_crash_between_send_and_record
    # is timing-dependent under load: see the issue note); a test that fails twice fails the run.
    ctest --preset "$preset" -j "$jobs" --repeat until-pass:2
    ;;
build)
    scripts/install-deps.sh
    build "${1:-dev}"
    ;;
*)
    sed -n '2,6p' "$0" >&2
    exit 64
    ;;
esac
