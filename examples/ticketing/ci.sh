#!/usr/bin/env bash
# End-to-end check of the ticketing example on a fresh Debian machine:
#
#   bash examples/ticketing/ci.sh --broker /path/to/arus
#
# Installs postgresql and hey if missing, builds the example in release, starts PostgreSQL, an
# Arus broker, the API and two workers on free ports in a temp dir, runs every scenario
# (scripts/scenarios.py), writes the figures to RESULTS.md, stops everything, and exits
# non-zero if any invariant failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
examples=$(dirname "$here")
broker=""
only=""
while [ $# -gt 0 ]; do
    case $1 in
    --broker) broker=$2; shift 2 ;;
    --only) only=$2; shift 2 ;; # e.g. --only a,b: a subset of scenarios, for development
    *) echo "usage: ci.sh --broker /path/to/arus [--only v,a,b,c,d,e,t,f,g,h]" >&2; exit 2 ;;
    esac
done
# shellcheck source=../ci-lib.sh
source "$examples/ci-lib.sh"
broker=$(require_broker "$broker")

ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
command -v hey >/dev/null || apt_install hey
command -v psql >/dev/null || apt_install postgresql-client

echo "== building (release)"
(cd "$examples" && cargo build --release -p ticketing)
app="${CARGO_TARGET_DIR:-$examples/target}/release/ticketing"

work=$(mktemp -d -t ticketing-ci.XXXXXX)
chmod 755 "$work" # the postgres server user must reach its data dir inside
cleanup() {
    status=$?
    # scenarios.py stops what it started; this catches an interrupted run.
    [ -n "${driver_pid:-}" ] && kill "$driver_pid" 2>/dev/null && wait "$driver_pid" 2>/dev/null
    bash "$here/scripts/pg.sh" stop "$work/pg" || true
    if [ $status -ne 0 ]; then
        echo "== logs kept in $work"
    else
        rm -rf "$work"
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting postgresql"
pg_port=$(bash "$here/scripts/pg.sh" start "$work/pg")

echo "== scenarios"
python3 "$here/scripts/scenarios.py" --broker "$broker" --app "$app" --pg-port "$pg_port" \
    --pg-data "$work/pg/data" --pg-bin "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)" --workdir "$work" --results "$here/RESULTS.md" ${only:+--only "$only"} &
driver_pid=$!
wait "$driver_pid"
