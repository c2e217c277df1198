# The cluster launcher contract, shared by compat/reference/kafka-cluster.sh (Apache Kafka 4.4.0)
# and compat/arus-cluster.sh (Arus); sourced, not run. A launcher defines before sourcing:
#
#   LAUNCHER            its name, for messages
#   impl_random_uuid    prints a new cluster id (kafka-storage random-uuid)
#   impl_format I INIT  formats node I's data dir from DIR/node-I/server.properties with
#                       $CLUSTER_ID (INIT: the KIP-853 --initial-controllers list, or empty)
#   impl_exec I         execs node I's server (stdout/stderr are already the node's log)
#   impl_props I        extra server.properties lines for node I (may print nothing)
#
# Commands (every launcher, same arguments, same output):
#
#   start  --dir DIR [--nodes N] [--base-port P] [--quorum static|dynamic] [--override k=v]...
#          write the configs and format (first time only), start every node that is not
#          running, wait until each node's own Metadata lists all N brokers (registered and
#          unfenced), print the bootstrap string (also written to DIR/bootstrap); if the
#          cluster does not become ready, the nodes this start launched are killed
#   format --dir DIR [same options]   only write the configs and format
#   start NODE --dir DIR    (re)start one node on its data; waits until its Metadata lists
#                           every node that is alive
#   stop [NODE] --dir DIR   SIGTERM (every node, or one), wait up to 30 s, then SIGKILL
#   kill NODE --dir DIR     SIGKILL one node (its pid is the server's own, not a wrapper's)
#   status --dir DIR        one line per node: node=ID pid=PID port=P controller_port=C alive=0|1 host=H
#   bootstrap --dir DIR     the bootstrap string host:port,host:port,...
#
# Layout: node I (1..N) listens for clients on BASE+I-1 and for the quorum on BASE+N+I-1 (BASE:
# --base-port, or the first block of 2N free consecutive ports from a random start below the
# kernel's ephemeral port range, since several clusters may run on this machine at once). Node I lives in DIR/node-I/
# (server.properties, data/, pid, out.log); DIR/cluster.env keeps N, BASE, the cluster id and
# the quorum kind, so the commands after `start` need only --dir. `--timeout S` (default 180)
# bounds every wait. CLUSTER_NETNS=PREFIX (faults/jepsen --netns) runs node I inside the network
# namespace PREFIX<I> (made by faults/jepsen/netns.py) and puts it on ${CLUSTER_NETNS_NET:-10.77.0}.I
# instead of 127.0.0.1, so links between nodes can be cut. Exit status 0 on success, 2 on bad usage or a failed step, 3 when the
# server cannot run a cluster at all (a launcher's impl_* says why).
set -euo pipefail
compat="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "$LAUNCHER: $*" >&2; exit 2; }

cmd="${1:-}"; [[ -n "$cmd" ]] || die "usage: $LAUNCHER start|format|stop|kill|status|bootstrap [NODE] --dir DIR ..."
shift
node="" dir="" nodes=3 base=0 quorum=static overrides=() timeout=180
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --nodes) nodes="$2"; shift 2 ;;
    --base-port) base="$2"; shift 2 ;;
    --quorum) quorum="$2"; shift 2 ;;
    --override) overrides+=("$2"); shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    [0-9]*) node="$1"; shift ;;
    *) die "unknown argument $1" ;;
  esac
done
[[ -n "$dir" ]] || die "need --dir DIR"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
env_file="$dir/cluster.env"

load_env() {
  [[ -s "$env_file" ]] || die "$dir is not a cluster directory (no cluster.env): run start first"
  # shellcheck disable=SC1090
  source "$env_file"
}

port_of() { echo $((BASE + $1 - 1)); }
host_of() { if [[ -n "${CLUSTER_NETNS:-}" ]]; then echo "${CLUSTER_NETNS_NET:-10.77.0}.$1"; else echo 127.0.0.1; fi; }
# The words an impl_exec puts before its server: enter node I's network namespace, if any.
netns_exec() { if [[ -n "${CLUSTER_NETNS:-}" ]]; then echo "ip netns exec ${CLUSTER_NETNS}$1"; fi; }
cport_of() { echo $((BASE + NODES + $1 - 1)); }
pid_of() { cat "$dir/node-$1/pid" 2>/dev/null || true; }
alive() { local p; p="$(pid_of "$1")"; [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; }
bootstrap() {
  local out="" i
  for ((i = 1; i <= NODES; i++)); do out+="${out:+,}$(host_of "$i"):$(port_of "$i")"; done
  echo "$out"
}

free_block() {
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
# Below the kernel's ephemeral range, so no client's outgoing connection takes a node's port
# between this check and the node's bind.
try:
    ephemeral = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral = 32768
for _ in range(200):
    base = random.randrange(10000, max(10001, min(ephemeral, 60000) - n))
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(base); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
else:
    sys.exit("no free port block")
PY
}

write_configs() {
  if [[ -s "$env_file" ]]; then load_env; return; fi
  [[ "$nodes" =~ ^[1-9][0-9]*$ ]] || die "--nodes must be a positive number"
  [[ "$quorum" == static || "$quorum" == dynamic ]] || die "--quorum static|dynamic"
  NODES="$nodes"
  if [[ "$base" == 0 ]]; then BASE="$(free_block $((2 * NODES)))"; else BASE="$base"; fi
  CLUSTER_ID="$(impl_random_uuid)"
  QUORUM="$quorum"
  local voters="" bootstrap_servers="" i o
  for ((i = 1; i <= NODES; i++)); do
    voters+="${voters:+,}$i@$(host_of "$i"):$(cport_of "$i")"
    bootstrap_servers+="${bootstrap_servers:+,}$(host_of "$i"):$(cport_of "$i")"
  done
  for ((i = 1; i <= NODES; i++)); do
    local nd="$dir/node-$i"
    mkdir -p "$nd"
    {
      echo "process.roles=broker,controller"
      echo "node.id=$i"
      if [[ "$QUORUM" == static ]]; then
        echo "controller.quorum.voters=$voters"
      else
        echo "controller.quorum.bootstrap.servers=$bootstrap_servers"
      fi
      echo "listeners=PLAINTEXT://$(host_of "$i"):$(port_of "$i"),CONTROLLER://$(host_of "$i"):$(cport_of "$i")"
      echo "advertised.listeners=PLAINTEXT://$(host_of "$i"):$(port_of "$i")"
      echo "controller.listener.names=CONTROLLER"
      echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
      echo "inter.broker.listener.name=PLAINTEXT"
      echo "log.dirs=$nd/data"
      # RF 1 everywhere, the internal topics included: copying partition data between
      # brokers is issue 15, and both servers get the same settings.
      echo "default.replication.factor=1"
      echo "offsets.topic.replication.factor=1"
      echo "transaction.state.log.replication.factor=1"
      echo "transaction.state.log.min.isr=1"
      echo "share.coordinator.state.topic.replication.factor=1"
      echo "share.coordinator.state.topic.min.isr=1"
      echo "group.initial.rebalance.delay.ms=0"
      impl_props "$i"
      # (java.util.Properties, and Arus: a later key wins, so overrides replace the lines above)
      for o in "${overrides[@]}"; do echo "$o"; done
    } > "$nd/server.properties"
  done
  {
    echo "NODES=$NODES"; echo "BASE=$BASE"; echo "CLUSTER_ID=$CLUSTER_ID"; echo "QUORUM=$QUORUM"
  } > "$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
}

format_all() {
  local i pids=() initial="" p
  if [[ "$QUORUM" == dynamic ]]; then
    # KIP-853: each controller's directory id is fixed at format time and named in
    # --initial-controllers, the same list on every node.
    for ((i = 1; i <= NODES; i++)); do
      [[ -s "$dir/node-$i/directory-id" ]] || impl_random_uuid > "$dir/node-$i/directory-id"
      initial+="${initial:+,}$i@$(host_of "$i"):$(cport_of "$i"):$(cat "$dir/node-$i/directory-id")"
    done
  fi
  for ((i = 1; i <= NODES; i++)); do
    [[ -f "$dir/node-$i/formatted" ]] && continue
    ( impl_format "$i" "$initial" > "$dir/node-$i/format.log" 2>&1 && touch "$dir/node-$i/formatted" ) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do
    wait "$p" || { tail -n 20 "$dir"/node-*/format.log >&2; die "formatting failed: see $dir/node-*/format.log"; }
  done
}

launch() {
  local i="$1" nd="$dir/node-$1"
  alive "$i" && die "node $i is already running (pid $(pid_of "$i"))"
  # Own session (setsid), so the caller's terminal signals do not reach it; the subshell and
  # setsid exec, so $! is the server's pid and `kill` hits the server itself.
  ( cd "$nd" && exec >> "$nd/out.log" 2>&1 < /dev/null && impl_exec "$i" ) &
  echo $! > "$nd/pid"
  disown $!
}

wait_nodes() {
  # Ready = the node's own Metadata lists `want` brokers (Kafka lists registered, unfenced ones).
  local want="$1"; shift
  local addrs="" i
  for i in "$@"; do addrs+="${addrs:+,}$(host_of "$i"):$(port_of "$i")"; done
  if ! python3 "$compat/kafka_wire.py" ready "$addrs" --brokers "$want" --timeout "$timeout"; then
    for i in "$@"; do
      if ! alive "$i"; then
        echo "$LAUNCHER: node $i exited; tail of $dir/node-$i/out.log:" >&2
        tail -n 20 "$dir/node-$i/out.log" >&2 || true
      fi
    done
    for i in "$@"; do
      alive "$i" && echo "$LAUNCHER: node $i ($(host_of "$i"):$(port_of "$i")) lists brokers: $(python3 "$compat/kafka_wire.py" metadata "$(host_of "$i"):$(port_of "$i")" 2>&1 | head -c 300)" >&2
    done
    # Every node serving but listing only itself: the server runs nodes, not a cluster.
    if (( $# > 1 )); then
      local alone=0
      for i in "$@"; do
        python3 "$compat/kafka_wire.py" metadata "$(host_of "$i"):$(port_of "$i")" 2>/dev/null \
          | python3 -c 'import json,sys; b=json.load(sys.stdin)["brokers"]; sys.exit(0 if list(b)==[sys.argv[1]] else 1)' "$i" \
          && alone=$((alone + 1))
      done
      if (( alone == $# )); then
        echo "$LAUNCHER: the server cannot run a cluster yet: the $# nodes run, but each node's Metadata lists only itself (no shared metadata quorum)" >&2
        exit 3
      fi
    fi
    die "not ready within ${timeout}s: every node's Metadata must list $want brokers (nodes $*)"
  fi
}

case "$cmd" in
  format)
    write_configs; format_all ;;
  start)
    if [[ -n "$node" ]]; then
      load_env
      (( node >= 1 && node <= NODES )) || die "no node $node (cluster has $NODES)"
      launch "$node"
      n_alive=0
      for ((i = 1; i <= NODES; i++)); do alive "$i" && n_alive=$((n_alive + 1)); done
      wait_nodes "$n_alive" "$node"
    else
      write_configs
      format_all
      all=() launched=()
      for ((i = 1; i <= NODES; i++)); do
        if ! alive "$i"; then launch "$i"; launched+=("$i"); fi
        all+=("$i")
      done
      # A cluster that does not become ready is not left running: SIGKILL what this start launched.
      trap 'rc=$?; if (( rc != 0 )); then
              for i in "${launched[@]}"; do if alive "$i"; then kill -KILL "$(pid_of "$i")" 2>/dev/null || true; fi; done
              for i in "${launched[@]}"; do for _ in $(seq 1 100); do alive "$i" || break; sleep 0.02; done; done
            fi; exit $rc' EXIT
      wait_nodes "$NODES" "${all[@]}"
      trap - EXIT
      bootstrap | tee "$dir/bootstrap"
    fi ;;
  stop)
    load_env
    targets=()
    if [[ -n "$node" ]]; then targets=("$node"); else for ((i = 1; i <= NODES; i++)); do targets+=("$i"); done; fi
    for i in "${targets[@]}"; do if alive "$i"; then kill -TERM "$(pid_of "$i")" 2>/dev/null || true; fi; done
    for i in "${targets[@]}"; do
      for _ in $(seq 1 300); do alive "$i" || break; sleep 0.1; done
      if alive "$i"; then kill -KILL "$(pid_of "$i")" 2>/dev/null || true; fi
    done ;;
  kill)
    load_env
    [[ -n "$node" ]] || die "kill needs a NODE"
    alive "$node" || die "node $node is not running"
    p="$(pid_of "$node")"
    kill -KILL "$p"
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done ;;
  status)
    load_env
    for ((i = 1; i <= NODES; i++)); do
      a=0; if alive "$i"; then a=1; fi
      echo "node=$i pid=$(pid_of "$i") port=$(port_of "$i") controller_port=$(cport_of "$i") alive=$a host=$(host_of "$i")"
    done ;;
  bootstrap)
    load_env; bootstrap ;;
  *) die "unknown command $cmd" ;;
esac
