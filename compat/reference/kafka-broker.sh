#!/usr/bin/env bash
# A stand-in for `arus serve` that runs a real single-node Apache Kafka (KRaft,
# node id 1) from Maven Central, so the harness can be checked against the
# reference implementation:
#
#   python3 compat/run.py --broker compat/reference/kafka-broker.sh
#
# Accepts the Arus CLI: serve --log-dirs DIR --listeners PLAINTEXT://127.0.0.1:0
# --ready-file FILE [--override key=value]... ; writes host:port + newline to
# FILE once the broker accepts connections; stops Kafka on SIGTERM.
#
# --listeners PLAINTEXT://127.0.0.1:PORT with a non-zero PORT listens there
# (port 0: a free port). Started again on the same --log-dirs, it reuses the
# existing data (no re-format) and the controller port of the first start, so
# the crash scripts can SIGKILL it and restart it. The wrapper `exec`s Kafka:
# its pid is Kafka's, so SIGKILL really kills the broker.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[[ "${1:-}" == serve ]] && shift
log_dirs="" ready="" overrides=() want_port=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --log-dirs) log_dirs="$2"; shift 2 ;;
    --ready-file) ready="$2"; shift 2 ;;
    --listeners) want_port="${2##*:}"; shift 2 ;;
    --override) overrides+=("$2"); shift 2 ;;
    *) echo "kafka-broker.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -n "$log_dirs" && -n "$ready" ]] || { echo "need --log-dirs and --ready-file" >&2; exit 2; }

cp_file="$here/../work/reference-classpath.txt"
if [[ ! -s "$cp_file" || "$here/pom.xml" -nt "$cp_file" ]]; then
  mkdir -p "$(dirname "$cp_file")"
  (cd "$here" && mvn -q -B -Dstyle.color=never dependency:build-classpath -Dmdep.outputFile="$cp_file" >&2)
fi
CP="$(cat "$cp_file")"

read -r port cport < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
[[ "$want_port" =~ ^[0-9]+$ && "$want_port" != 0 ]] && port="$want_port"
mkdir -p "$log_dirs"
formatted=0
# A restart on the same data keeps the controller port the quorum was formatted with.
if [[ -s "$log_dirs/controller-port" && -d "$log_dirs/data" ]]; then
  cport="$(cat "$log_dirs/controller-port")"
  formatted=1
fi
echo "$cport" > "$log_dirs/controller-port"
props="$log_dirs/server.properties"
cat > "$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$log_dirs/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
# (java.util.Properties: a later key wins, so overrides replace the lines above)
for o in "${overrides[@]}"; do echo "$o" >> "$props"; done

if [[ $formatted == 0 ]]; then
  java -cp "$CP" kafka.tools.StorageTool format --standalone -t "$(java -cp "$CP" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)" -c "$props" >&2
fi
rm -f "$ready"
# Ready-file writer: polls the port while the broker (this pid after exec) lives.
me=$$
(
  for _ in $(seq 1 600); do
    kill -0 "$me" 2>/dev/null || exit 0
    if (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '127.0.0.1:%s\n' "$port" > "$ready"
      exit 0
    fi
    sleep 0.1
  done
) &
exec java -Xmx1g -cp "$CP" kafka.Kafka "$props" >&2
