#!/usr/bin/env bash
# Runs `aesel serve` with its embedded defaults (HTTP 127.0.0.1:8080, UDP 8762, data in ./aesel-data),
# building it in release mode first. Extra arguments go to `aesel`, e.g. `./scripts/run.sh bench --baseline`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
swift build -c release --product aesel
if [ "$#" -eq 0 ]; then set -- serve; fi
exec .build/release/aesel "$@"
