#!/usr/bin/env bash
# CI: the Windows side of the platform layer (daemon/platform: the SCM contract, the Event Log,
# `billsync service install|uninstall`) cross-compiled with Debian's mingw-w64, together with its
# unit test against a fake SCM (GoogleTest built from Debian's libgtest-dev sources). With wine
# installed the test .exe runs; without, it is only linked, and the script says so. The rest of
# a Windows build (Boost, RocksDB, OpenSSL... for Windows) is not built here: see the README.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh --mingw
cxx=x86_64-w64-mingw32-g++-posix
out=build/windows
mkdir -p "$out"
gtest=/usr/src/googletest
flags=(-std=c++20 -O1 -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror -I.
    -D_WIN32_WINNT=0x0A00 -DUNICODE -D_UNICODE)
gtest_flags=(-std=c++20 -O1 -I"$gtest/googletest/include" -I"$gtest/googletest")

echo "== windows: GoogleTest for mingw-w64 (from $gtest)"
if [[ ! -f $out/gtest.a ]]; then
    "$cxx" "${gtest_flags[@]}" -c "$gtest/googletest/src/gtest-all.cc" -o "$out/gtest-all.o"
    "$cxx" "${gtest_flags[@]}" -c "$gtest/googletest/src/gtest_main.cc" -o "$out/gtest_main.o"
    x86_64-w64-mingw32-ar rcs "$out/gtest.a" "$out/gtest-all.o" "$out/gtest_main.o"
fi

echo "== windows: the platform layer and its test"
for src in daemon/platform/scm_control.cpp daemon/platform/windows_service.cpp; do
    "$cxx" "${flags[@]}" -c "$src" -o "$out/$(basename "$src" .cpp).o"
done
"$cxx" "${flags[@]}" -isystem "$gtest/googletest/include" \
    -c tests/unit/daemon/platform/scm_control_test.cpp -o "$out/scm_control_test.o"
"$cxx" -static -o "$out/platform_test.exe" "$out/scm_control_test.o" "$out/scm_control.o" \
    "$out/windows_service.o" "$out/gtest.a" -ladvapi32
file "$out/platform_test.exe" 2>/dev/null || ls -l "$out/platform_test.exe"
# The Windows entry points are in the executable (not dropped by the linker).
symbols=$(x86_64-w64-mingw32-nm -C "$out/platform_test.exe")
for symbol in install_service uninstall_service run_as_service system_lifecycle; do
    grep -q "platform::$symbol(" <<<"$symbols" ||
        { echo "ci-windows: $symbol is missing from platform_test.exe" >&2; exit 1; }
done

if command -v wine >/dev/null 2>&1; then
    echo "== windows: running platform_test.exe under wine"
    WINEDEBUG=-all wine "$out/platform_test.exe"
else
    echo "== windows: wine is not installed: platform_test.exe was built and linked, not run"
fi
