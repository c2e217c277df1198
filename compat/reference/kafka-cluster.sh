#!/usr/bin/env bash
# A local Apache Kafka 4.4.0 cluster of N nodes in KRaft combined mode
# (process.roles=broker,controller) on 127.0.0.1, for the cluster harness
# (compat/run.py --cluster N, compat/cluster_tools.py, compat/cluster_faults.py,
# bench/cluster.py). It implements the cluster launcher contract that
# compat/arus-cluster.sh implements for Arus (see compat/README.md, "Cluster mode"):
#
#   kafka-cluster.sh start  --dir DIR [--nodes N] [--base-port P] [--quorum static|dynamic]
#                           [--override k=v]...   format (first time), start every node, wait
#                                                 until each node's own Metadata lists all N
#                                                 brokers, print the bootstrap string
#   kafka-cluster.sh format --dir DIR [same options]   only write the configs and format
#   kafka-cluster.sh start NODE --dir DIR   (re)start one node on its data; waits until that
#                                           node's Metadata lists itself (registered, unfenced)
#   kafka-cluster.sh stop [NODE] --dir DIR  SIGTERM (all nodes, or one), wait for exit
#   kafka-cluster.sh kill NODE --dir DIR    SIGKILL one node
#   kafka-cluster.sh status --dir DIR       one line per node:
#                                           node=ID pid=PID port=P controller_port=C alive=0|1
#   kafka-cluster.sh bootstrap --dir DIR    the bootstrap string (host:port,host:port,...)
#
# Ports: node i (1..N) listens for clients on BASE+i-1 and for the quorum on BASE+N+i-1
# (BASE: --base-port, or the first block of 2N free consecutive ports found). Data and logs
# live under DIR/node-I/ (data/, server.properties, pid, out.log); DIR/cluster.env keeps N,
# the ports and the cluster id, so the commands after `start` need only --dir.
# --quorum static (default) writes controller.quorum.voters (kraft.version 0);
# dynamic writes controller.quorum.bootstrap.servers and formats with
# --initial-controllers (KIP-853, kraft.version 1).
# Memory: -Xmx512m per JVM (KAFKA_CLUSTER_HEAP to change); the machine has 2 cores.
# Each node is started with setsid and exec: its pid is the JVM's, so `kill` is a real SIGKILL.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
compat="$(cd "$here/.." && pwd)"

die() { echo "kafka-cluster.sh: $*" >&2; exit 2; }

cmd="${1:-}"; [[ -n "$cmd" ]] || die "usage: kafka-cluster.sh start|format|stop|kill|status|bootstrap ..."
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

classpath() {
  local cp_file="$compat/work/reference-classpath.txt"
  if [[ ! -s "$cp_file" || "$here/pom.xml" -nt "$cp_file" ]]; then
    mkdir -p "$(dirname "$cp_file")"
    (cd "$here" && mvn -q -B -Dstyle.color=never dependency:build-classpath -Dmdep.outputFile="$cp_file" >&2)
  fi
  cat "$cp_file"
}

load_env() {
  [[ -s "$env_file" ]] || die "$dir is not a cluster directory (no cluster.env): run start first"
  # shellcheck disable=SC1090
  source "$env_file"
}

port_of() { echo $((BASE + $1 - 1)); }
cport_of() { echo $((BASE + NODES + $1 - 1)); }
pid_of() { cat "$dir/node-$1/pid" 2>/dev/null || true; }
alive() { local p; p="$(pid_of "$1")"; [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; }
bootstrap() {
  local out="" i
  for ((i = 1; i <= NODES; i++)); do out+="${out:+,}127.0.0.1:$(port_of "$i")"; done
  echo "$out"
}

free_block() {
  # The first block of 2N consecutive ports that all bind on 127.0.0.1, from a random start
  # (several clusters may run at once on this machine).
  python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 60000 - n)
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
  local CP; CP="$(classpath)"
  CLUSTER_ID="$(java -cp "$CP" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
  QUORUM="$quorum"
  local voters="" bootstrap_servers="" i
  for ((i = 1; i <= NODES; i++)); do
    voters+="${voters:+,}$i@127.0.0.1:$(cport_of "$i")"
    bootstrap_servers+="${bootstrap_servers:+,}127.0.0.1:$(cport_of "$i")"
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
      echo "listeners=PLAINTEXT://127.0.0.1:$(port_of "$i"),CONTROLLER://127.0.0.1:$(cport_of "$i")"
      echo "advertised.listeners=PLAINTEXT://127.0.0.1:$(port_of "$i")"
      echo "controller.listener.names=CONTROLLER"
      echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
      echo "inter.broker.listener.name=PLAINTEXT"
      echo "log.dirs=$nd/data"
      # RF 1 everywhere: data replication is issue 15; the internal topics too, so a cluster
      # with a killed node keeps the scenarios' groups and transactions on live nodes only
      # when their partition's leader lives.
      echo "default.replication.factor=1"
      echo "offsets.topic.replication.factor=1"
      echo "transaction.state.log.replication.factor=1"
      echo "transaction.state.log.min.isr=1"
      echo "share.coordinator.state.topic.replication.factor=1"
      echo "share.coordinator.state.topic.min.isr=1"
      echo "group.initial.rebalance.delay.ms=0"
      # (java.util.Properties: a later key wins, so overrides replace the lines above)
      for o in "${overrides[@]}"; do echo "$o"; done
    } > "$nd/server.properties"
  done
  {
    echo "NODES=$NODES"; echo "BASE=$BASE"; echo "CLUSTER_ID=$CLUSTER_ID"; echo "QUORUM=$QUORUM"
  } > "$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
}

format_all() {
  local CP; CP="$(classpath)"
  local i pids=() initial=""
  if [[ "$QUORUM" == dynamic ]]; then
    # KIP-853: every controller's directory id is fixed at format time and named in
    # --initial-controllers, the same list on every node.
    for ((i = 1; i <= NODES; i++)); do
      [[ -s "$dir/node-$i/directory-id" ]] || java -cp "$CP" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1 > "$dir/node-$i/directory-id"
      initial+="${initial:+,}$i@127.0.0.1:$(cport_of "$i"):$(cat "$dir/node-$i/directory-id")"
    done
  fi
  for ((i = 1; i <= NODES; i++)); do
    [[ -f "$dir/node-$i/data/meta.properties" ]] && continue
    if [[ "$QUORUM" == dynamic ]]; then
      java -cp "$CP" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$dir/node-$i/server.properties" \
        --initial-controllers "$initial" > "$dir/node-$i/format.log" 2>&1 &
    else
      java -cp "$CP" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$dir/node-$i/server.properties" \
        > "$dir/node-$i/format.log" 2>&1 &
    fi
    pids+=($!)
  done
  local p
  for p in "${pids[@]}"; do wait "$p" || die "kafka-storage format failed: see $dir/node-*/format.log"; done
}

launch() {
  local i="$1" CP nd="$dir/node-$1"
  alive "$i" && die "node $i is already running (pid $(pid_of "$i"))"
  CP="$(classpath)"
  # setsid: own session, so the caller's terminal signals do not reach it; the subshell
  # execs, so $! is the JVM's pid.
  (exec setsid java "-Xmx${KAFKA_CLUSTER_HEAP:-512m}" -cp "$CP" kafka.Kafka "$nd/server.properties" \
      >> "$nd/out.log" 2>&1 < /dev/null) &
  echo $! > "$nd/pid"
  date +%s.%N > "$nd/started-at"
}

wait_nodes() {
  # Ready = the node's own Metadata lists `want` brokers (Kafka lists registered, unfenced ones).
  local want="$1"; shift
  local addrs="" i
  for i in "$@"; do addrs+="${addrs:+,}127.0.0.1:$(port_of "$i")"; done
  if ! python3 "$compat/kafka_wire.py" ready "$addrs" --brokers "$want" --timeout "$timeout"; then
    for i in "$@"; do
      alive "$i" || echo "kafka-cluster.sh: node $i exited; tail of $dir/node-$i/out.log:" >&2
      alive "$i" || tail -20 "$dir/node-$i/out.log" >&2 || true
    done
    die "not ready within ${timeout}s (nodes $*)"
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
      # The restarted node is ready once it lists every node that is alive now.
      n_alive=0
      for ((i = 1; i <= NODES; i++)); do alive "$i" && n_alive=$((n_alive + 1)); done
      wait_nodes "$n_alive" "$node"
    else
      write_configs
      format_all
      all=()
      for ((i = 1; i <= NODES; i++)); do alive "$i" || launch "$i"; all+=("$i"); done
      wait_nodes "$NODES" "${all[@]}"
      bootstrap | tee "$dir/bootstrap"
    fi ;;
  stop)
    load_env
    targets=()
    if [[ -n "$node" ]]; then targets=("$node"); else for ((i = 1; i <= NODES; i++)); do targets+=("$i"); done; fi
    for i in "${targets[@]}"; do alive "$i" && kill -TERM "$(pid_of "$i")" 2>/dev/null || true; done
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
      a=0; alive "$i" && a=1
      echo "node=$i pid=$(pid_of "$i") port=$(port_of "$i") controller_port=$(cport_of "$i") alive=$a"
    done ;;
  bootstrap)
    load_env; bootstrap ;;
  *) die "unknown command $cmd" ;;
esac
