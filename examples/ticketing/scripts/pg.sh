#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for development and CI.
#
#   scripts/pg.sh start DIR   install postgresql if missing, init a cluster in DIR, start it on a
#                             free port, create database `ticketing`; prints the port
#   scripts/pg.sh stop DIR    stop the cluster in DIR (fast shutdown)
#
# PostgreSQL refuses to run as root, so when run as root the server runs as the `postgres` user.
set -euo pipefail

cmd=${1:?usage: pg.sh start|stop DIR}
dir=${2:?usage: pg.sh start|stop DIR}

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $cmd in
start)
    bin=$(find_bin)
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "installing postgresql" >&2
        # Another apt user may hold the lock: wait for it rather than fail.
        apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq postgresql >&2
        bin=$(find_bin)
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        # The server user must be able to reach DIR (mktemp -d makes 0700 root dirs).
        chmod 755 "$dir"
        chown postgres "$dir"
        runuser -u postgres -- test -x "$dir" || {
            echo "user postgres cannot reach $dir: make its parent directories world-executable" >&2
            exit 1
        }
    fi
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=50" start >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qAt -c "CREATE DATABASE ticketing" >&2
    echo "$port"
    ;;
stop)
    bin=$(find_bin)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    fi
    ;;
*)
    echo "usage: pg.sh start|stop DIR" >&2
    exit 2
    ;;
esac
