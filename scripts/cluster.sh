#!/usr/bin/env bash
# A whole cluster on this machine with one command: etcd, PostgreSQL, two Adrestia instances and pairs in
# two regions (east-1, east-2, west-1) on free loopback ports, as `aesel cluster` runs them. It prints where
# everything listens, and Ctrl-C (or SIGTERM) stops it all. Installs what is missing (the build's system
# libraries, Debian's etcd-server and postgresql), builds aesel in release mode, then runs it. Extra
# arguments go to `aesel cluster`, e.g. `./scripts/cluster.sh --adrestia 3 --pairs east=2,west=2,north`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/etcd.sh install
./scripts/postgres.sh install
swift build -c release --product aesel
exec .build/release/aesel cluster "$@"
