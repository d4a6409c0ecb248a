#!/usr/bin/env bash
# Installs the Debian 12 packages billsync builds and tests with. Idempotent: packages already
# present are not fetched again, and apt is only updated when something is missing.
set -euo pipefail

packages=(
    build-essential cmake ninja-build ccache pkg-config git ca-certificates tzdata curl
    libboost1.81-dev libboost-url1.81-dev libssl-dev zlib1g-dev
    nlohmann-json3-dev librocksdb-dev libspdlog-dev libfmt-dev libtomlplusplus-dev
    libhowardhinnant-date-dev libcli11-dev libgtest-dev libgmock-dev
    # The dashboard page's test loads it in a real browser, headless (no recommends: no extras).
    chromium
)
for option in "$@"; do
    case "$option" in
    --clang) packages+=(clang-19 libclang-rt-19-dev clang-format-19) ;;
    # The Windows cross compiler (scripts/ci-windows.sh): the platform layer and its test.
    --mingw) packages+=(g++-mingw-w64-x86-64-posix) ;;
    # The .deb check (scripts/ci-package.sh): the package depends on systemd; the check reads the
    # man page, makes test credentials with openssl and verifies the units with systemd-analyze.
    --package) packages+=(systemd man-db openssl dpkg-dev) ;;
    *)
        echo "usage: $0 [--clang] [--mingw] [--package]" >&2
        exit 64
        ;;
    esac
done

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
echo "billsync: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
    sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
