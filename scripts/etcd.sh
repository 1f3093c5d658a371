#!/usr/bin/env bash
# A throwaway etcd for the tests and benchmarks: Debian's etcd-server, one member, data in DIR, on loopback.
#
#   scripts/etcd.sh start DIR PORT   installs etcd-server if missing, starts etcd with its client port on
#                                    127.0.0.1:PORT (peers on PORT+1), waits until healthy and prints
#                                    etcd://127.0.0.1:PORT, the only thing printed on stdout
#   scripts/etcd.sh stop DIR         stops it and removes DIR
#   scripts/etcd.sh install          only installs etcd-server if missing (scripts/cluster.sh)
set -euo pipefail
command=${1:?start, stop or install}

install_etcd() {
    if ! command -v etcd >/dev/null; then
        sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        echo "etcd.sh: installing Debian's etcd-server" >&2
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >&2
        # The package starts a system-wide etcd on the default ports; the tests run their own.
        $sudo systemctl disable --now etcd >/dev/null 2>&1 || true
    fi
}

[ "$command" = install ] && { install_etcd; exit 0; }
dir=${2:?a folder}

case "$command" in
start)
    port=${3:?a port}
    install_etcd
    mkdir -p "$dir"
    client="http://127.0.0.1:$port"
    peer="http://127.0.0.1:$((port + 1))"
    etcd --name aesel-test --data-dir "$dir/data" \
        --listen-client-urls "$client" --advertise-client-urls "$client" \
        --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
        --initial-cluster "aesel-test=$peer" --initial-cluster-state new \
        --auto-compaction-mode revision --auto-compaction-retention 10000 \
        --log-level warn --logger zap > "$dir/etcd.log" 2>&1 &
    echo $! > "$dir/etcd.pid"
    for _ in $(seq 200); do
        if curl -sf "$client/health" 2>/dev/null | grep -q '"health":"true"'; then
            echo "etcd://127.0.0.1:$port"
            exit 0
        fi
        sleep 0.05
    done
    echo "etcd did not start; see $dir/etcd.log" >&2
    exit 1
    ;;
stop)
    if [ -f "$dir/etcd.pid" ]; then
        kill "$(cat "$dir/etcd.pid")" 2>/dev/null || true
        rm -rf "$dir"
    fi
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR | install" >&2
    exit 2
    ;;
esac
