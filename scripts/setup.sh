#!/usr/bin/env bash
# Installs what building and running Aesel needs on a Debian machine with Swift: the system libraries
# behind our C-backed targets. Safe to run again; it installs only what is missing.
set -euo pipefail

packages=(libsqlite3-dev libzmq3-dev librdkafka-dev libssl-dev)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

command -v swift >/dev/null || { echo "swift is not on PATH (expected Swift 6.x)" >&2; exit 1; }
