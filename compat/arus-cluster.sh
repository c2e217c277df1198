#!/usr/bin/env bash
# The cluster launcher contract (compat/cluster-launcher.sh) for Arus: N `arus serve --config`
# processes in combined mode on 127.0.0.1, configured with Kafka's own property names, so that
# every cluster script runs unchanged against Arus and against Apache Kafka
# (compat/reference/kafka-cluster.sh):
#
#   compat/arus-cluster.sh start --dir /tmp/ac --nodes 3     # prints the bootstrap string
#   compat/arus-cluster.sh kill 2 --dir /tmp/ac ; compat/arus-cluster.sh start 2 --dir /tmp/ac
#   compat/arus-cluster.sh status --dir /tmp/ac ; compat/arus-cluster.sh stop --dir /tmp/ac
#
# The binary: $ARUS_BIN, else target/release/arus. Each node's server.properties holds node.id,
# process.roles=broker,controller, controller.quorum.voters (or
# controller.quorum.bootstrap.servers with --quorum dynamic), listeners=PLAINTEXT://…,CONTROLLER://…,
# advertised.listeners, controller.listener.names, listener.security.protocol.map,
# inter.broker.listener.name and log.dirs, exactly what kafka-cluster.sh writes for Kafka; it is
# formatted with `arus storage format -t ID -c server.properties` (`arus storage random-uuid` for
# the id) and started with `arus serve --config server.properties`.
#
# Per-node processes rather than `arus dev cluster --nodes N`: the fault scenarios and the
# benchmark SIGKILL and restart single nodes, which needs each node's own pid.
#
# Until Arus forms a cluster (issue 14), this exits 3 with the reason: no `storage` command, or
# nodes that start but do not list each other in their Metadata.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LAUNCHER=arus-cluster.sh
ARUS_BIN="${ARUS_BIN:-$here/../target/release/arus}"

not_yet() {
  echo "$LAUNCHER: Arus cannot run a cluster yet: $*" >&2
  echo "$LAUNCHER: (this launcher needs \`arus storage random-uuid|format\` and \`arus serve --config\` with" >&2
  echo "$LAUNCHER:  process.roles / controller.quorum.voters, issue 14; compat/reference/kafka-cluster.sh runs Kafka)" >&2
  exit 3
}

impl_random_uuid() {
  [[ -x "$ARUS_BIN" ]] || not_yet "no binary at $ARUS_BIN (build it: cargo build --release -p arus, or set ARUS_BIN)"
  local out
  out="$("$ARUS_BIN" storage random-uuid 2>&1)" || not_yet "\`arus storage random-uuid\` failed: $(echo "$out" | head -3)"
  echo "$out" | tail -1
}

impl_format() {
  local props="$dir/node-$1/server.properties"
  if [[ -n "$2" ]]; then
    "$ARUS_BIN" storage format -t "$CLUSTER_ID" -c "$props" --initial-controllers "$2"
  else
    "$ARUS_BIN" storage format -t "$CLUSTER_ID" -c "$props"
  fi
}

impl_exec() {
  # shellcheck disable=SC2046
  exec $(netns_exec "$1") setsid "$ARUS_BIN" serve --config "$dir/node-$1/server.properties"
}

impl_props() { :; }

# shellcheck source=cluster-launcher.sh
source "$here/cluster-launcher.sh"
