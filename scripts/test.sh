#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests, which start real `aesel serve` processes on
# loopback. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The integration tests run the `aesel` executable, so build it with the tests.
swift build --build-tests
swift test --skip-build
