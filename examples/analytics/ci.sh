#!/usr/bin/env bash
# End-to-end check of the analytics example on a fresh Debian machine:
#
#   bash examples/analytics/ci.sh --broker /path/to/arus [--seed N]
#
# Installs what is missing (chromium + chromium-driver, a Python venv with pinned packages),
# builds the example in release, starts its own Arus and the app on free ports in a temp dir,
# runs every check (tests/scenario.py, which also drives the dashboard in headless Chromium
# and saves dashboard.png here), stops everything and exits non-zero if any check failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
examples=$(dirname "$here")
broker=""
seed=""
while [ $# -gt 0 ]; do
    case $1 in
    --broker) broker=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "usage: ci.sh --broker /path/to/arus [--seed N]" >&2; exit 2 ;;
    esac
done
# shellcheck source=../ci-lib.sh
source "$examples/ci-lib.sh"
broker=$(require_broker "$broker")

echo "== tools"
[ -x /usr/bin/chromium ] || apt_install chromium
[ -x /usr/bin/chromedriver ] || apt_install chromium-driver
command -v cc >/dev/null && command -v make >/dev/null || apt_install build-essential # librdkafka is built from source
command -v python3 >/dev/null || apt_install python3
venv="$here/.venv"
if [ ! -x "$venv/bin/pip" ]; then
    # Debian's python3 creates venvs only with python3-venv installed.
    python3 -m venv "$venv" 2>/dev/null || { rm -rf "$venv"; apt_install python3-venv; python3 -m venv "$venv"; }
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$here/tests/requirements.txt"

echo "== building (release)"
(cd "$examples" && cargo build --release -p analytics)
app="${CARGO_TARGET_DIR:-$examples/target}/release/analytics"

work=$(mktemp -d -t analytics-ci.XXXXXX)
broker_pid=""
scenario_pid=""
stop_pid() { # pid, seconds to wait after SIGTERM before SIGKILL; a negative pid is a group
    local pid=$1 i
    kill -CONT -- "$pid" 2>/dev/null || true # the 503 check freezes the broker; never leave it so
    kill -TERM -- "$pid" 2>/dev/null || return 0
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 -- "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "$pid" 2>/dev/null || true
}
cleanup() {
    status=$?
    trap - EXIT INT TERM
    # The scenario runs in its own process group (app, chromedriver, chromium): end all of it.
    [ -n "$scenario_pid" ] && stop_pid "-$scenario_pid" 20
    [ -n "$broker_pid" ] && stop_pid "$broker_pid" 20
    wait 2>/dev/null || true
    if [ $status -ne 0 ]; then
        echo "== FAILED; logs kept in $work"
    else
        rm -rf "$work"
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting arus"
# Segments roll every second and the cleaner runs often, so the compacted state topic is
# actually compacted within the run (the scenario restarts the app from the compacted topic).
"$broker" serve --listeners PLAINTEXT://127.0.0.1:0 --log-dirs "$work/broker-data" \
    --ready-file "$work/broker.ready" \
    --override log.roll.ms=1000 --override log.cleaner.backoff.ms=500 \
    --override log.cleaner.min.cleanable.ratio=0.01 >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 300); do
    [ -s "$work/broker.ready" ] && break
    kill -0 "$broker_pid" 2>/dev/null || { echo "arus exited; see $work/broker.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$work/broker.ready" ] || { echo "arus not ready after 30 s" >&2; exit 1; }
bootstrap=$(cat "$work/broker.ready")
echo "arus at $bootstrap"

echo "== scenarios"
setsid "$venv/bin/python" "$here/tests/scenario.py" --app "$app" --bootstrap "$bootstrap" \
    --workdir "$work" --broker-pid "$broker_pid" --screenshot "$here/dashboard.png" --expect-compaction \
    ${seed:+--seed "$seed"} &
scenario_pid=$!
wait "$scenario_pid"
