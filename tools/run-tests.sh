#!/usr/bin/env bash
# Runs every test of livemount on a fresh Debian 12 machine: installs what is missing,
# builds, runs ctest (unit, integration and end-to-end tests).
#   tools/run-tests.sh [ctest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh build test
BUILD=${BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
cd "$BUILD"
ctest --output-on-failure --timeout 900 -j2 "$@"
