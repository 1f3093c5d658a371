#!/usr/bin/env bash
# A throwaway PostgreSQL for the tests: a new cluster in DIR, on 127.0.0.1:PORT, with fsync off.
#
#   scripts/postgres.sh start DIR PORT   installs Debian's postgresql if missing, starts the server, waits
#                                        until it accepts connections and prints its URL (the only thing
#                                        printed on stdout): postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/postgres.sh stop DIR         stops that server and removes DIR
#   scripts/postgres.sh install          only installs Debian's postgresql if missing (scripts/cluster.sh)
#
# The server trusts every local connection (-A trust) and loses data on a crash (fsync=off): tests only.
# initdb refuses to run as root, so as root the server runs as the `postgres` user (platform notes, 5).
set -euo pipefail

usage() {
    echo "usage: $0 start DIR PORT | stop DIR | install" >&2
    exit 2
}

# DIR holds this marker once `start` has made it a cluster folder; `stop` removes only such folders.
marker=.aesel-postgres

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

install_postgresql() {
    if ! dpkg -s postgresql >/dev/null 2>&1; then
        echo "postgres.sh: installing Debian's postgresql" >&2
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
    fi
}

# initdb and pg_ctl are not on PATH on Debian: take the newest installed version's bin folder.
pg_bin() {
    local bin
    bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    [ -x "$bin/initdb" ] || { echo "postgres.sh: no initdb under /usr/lib/postgresql" >&2; exit 1; }
    echo "$bin"
}

# Runs a server command as the cluster's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local dir=$1 port=$2
    [[ "$port" =~ ^[0-9]+$ ]] || usage
    install_postgresql
    local bin
    bin=$(pg_bin)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -e "$dir/data" ]; then
        echo "postgres.sh: $dir/data exists; stop the old server first" >&2
        exit 1
    fi
    touch "$dir/$marker"
    [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$dir"

    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        exit 1
    }
    # The socket goes in DIR (-k), so the server needs nothing under /var/run/postgresql.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -s -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >&2 || {
        echo "postgres.sh: the server did not start; its log:" >&2
        cat "$dir/log" >&2 || true
        exit 1
    }
    local tries=0
    until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; do
        tries=$((tries + 1))
        if [ "$tries" -ge 300 ]; then
            echo "postgres.sh: the server on port $port is not ready after 30 s; its log:" >&2
            cat "$dir/log" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
    echo "postgres://postgres@127.0.0.1:$port/postgres"
}

stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    if [ ! -e "$dir/$marker" ]; then
        # An empty folder (start failed before initdb) goes too; anything else is not ours to delete.
        rmdir "$dir" 2>/dev/null || { echo "postgres.sh: $dir is not a folder made by 'start'; left alone" >&2; exit 1; }
        return 0
    fi
    if [ -e "$dir/data/postmaster.pid" ]; then
        as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w -s stop >&2 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) [ $# -eq 3 ] || usage; start "$2" "$3" ;;
    stop) [ $# -eq 2 ] || usage; stop "$2" ;;
    install) [ $# -eq 1 ] || usage; install_postgresql ;;
    *) usage ;;
esac
