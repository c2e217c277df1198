#!/usr/bin/env bash
# KIP-848 regex subscription end to end: the Java consumer 4.4 subscribed with
# SubscriptionPattern("rx-.*") (group.protocol=consumer) consumes from a matching topic
# created before it subscribed and one created after (picked up after the broker's
# 10 s regex batch-refresh interval), and nothing from a non-matching topic.
#
#   compat/regex_subscription.sh [BROKER]     # default target/release/arus; takes ~30 s
#   compat/regex_subscription.sh compat/reference/kafka-broker.sh   # the same on Kafka 4.4.0
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
broker="${1:-$root/target/release/arus}"
cp_file="$root/compat/work/reference-classpath.txt"
if [[ ! -s "$cp_file" ]]; then
  (cd "$root/compat/reference" && mvn -q -B dependency:build-classpath -Dmdep.outputFile="$cp_file" >&2)
fi
dir="$(mktemp -d)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
ARUS_LOG="${ARUS_LOG:-info,arus_group=debug}" "$broker" serve --log-dirs "$dir/data" --listeners PLAINTEXT://127.0.0.1:0 \
  --ready-file "$dir/ready" >"$dir/broker.log" 2>&1 &
pid=$!
for _ in $(seq 600); do
  [[ -s "$dir/ready" ]] && break
  kill -0 "$pid" 2>/dev/null || { echo "broker exited:" >&2; tail -20 "$dir/broker.log" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$dir/ready" ]] || { echo "broker not ready after 60 s" >&2; exit 1; }
bs="$(head -1 "$dir/ready")"
if ! java ${JAVA_OPTS:-} -cp "$(cat "$cp_file")" "$root/compat/regex/RegexSubscription.java" "$bs"; then
  echo "--- broker log (tail)" >&2; [[ -n "${KEEP_LOG:-}" ]] && cp "$dir/broker.log" "$KEEP_LOG"; tail -${LOG_LINES:-40} "$dir/broker.log" >&2; exit 1
fi
