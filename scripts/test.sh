#!/usr/bin/env bash
# Sets up a fresh Debian machine, builds, and runs every test (CTest: unit,
# CLI and fuzz tests). Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
