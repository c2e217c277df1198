#!/usr/bin/env bash
# A local Apache Kafka 4.4.0 cluster of N nodes in KRaft combined mode
# (process.roles=broker,controller) on 127.0.0.1, for the cluster harness
# (compat/run.py --cluster N, compat/cluster_tools.py, compat/cluster_faults.py,
# bench/cluster.py):
#
#   compat/reference/kafka-cluster.sh start --dir /tmp/kc --nodes 3   # prints the bootstrap string
#   compat/reference/kafka-cluster.sh status --dir /tmp/kc            # node=1 pid=… port=… controller_port=… alive=1
#   compat/reference/kafka-cluster.sh kill 2 --dir /tmp/kc            # SIGKILL node 2
#   compat/reference/kafka-cluster.sh start 2 --dir /tmp/kc           # restart it on its data
#   compat/reference/kafka-cluster.sh stop --dir /tmp/kc
#
# The commands, the ports and the layout are the launcher contract in compat/cluster-launcher.sh,
# which compat/arus-cluster.sh implements for Arus. Kafka comes from Maven Central
# (reference/pom.xml; classpath in compat/work/reference-classpath.txt, as kafka-broker.sh).
# Formatting: kafka-storage format -t ID -c server.properties, with the static
# controller.quorum.voters (--quorum static, the default) or --initial-controllers (--quorum
# dynamic, KIP-853). Heap -Xmx512m per JVM (KAFKA_CLUSTER_HEAP to change): the machine has 2 cores.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LAUNCHER=kafka-cluster.sh

classpath() {
  local cp_file="$here/../work/reference-classpath.txt"
  if [[ ! -s "$cp_file" || "$here/pom.xml" -nt "$cp_file" ]]; then
    mkdir -p "$(dirname "$cp_file")"
    (cd "$here" && mvn -q -B -Dstyle.color=never dependency:build-classpath -Dmdep.outputFile="$cp_file" >&2)
  fi
  cat "$cp_file"
}

impl_random_uuid() { java -cp "$(classpath)" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1; }

impl_format() {
  local props="$dir/node-$1/server.properties"
  if [[ -n "$2" ]]; then
    java -cp "$(classpath)" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$props" --initial-controllers "$2"
  else
    java -cp "$(classpath)" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$props"
  fi
}

impl_exec() {
  local cp; cp="$(classpath)"
  # shellcheck disable=SC2046
  exec $(netns_exec "$1") setsid java "-Xmx${KAFKA_CLUSTER_HEAP:-512m}" -cp "$cp" kafka.Kafka "$dir/node-$1/server.properties"
}

impl_props() { :; }

# shellcheck source=../cluster-launcher.sh
source "$here/../cluster-launcher.sh"
