#!/usr/bin/env bash
# Installs everything the Arus conformance harness needs. Idempotent: steps whose
# inputs have not changed since the last successful run are skipped.
#
#   compat/.venv             Python venv: confluent-kafka, kafka-python (+ codecs)
#   compat/node/node_modules kafkajs (+ snappy/lz4 codecs), from package-lock.json
#   compat/java/target       JavaClient jar + target/classpath.txt (kafka-clients)
#   compat/work/bin/franzgo  franz-go program
#
# Needs: python3 (3.9+), node 20 + npm, Java 17 + Maven, Go (per go.mod).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
mkdir -p work/bin work/stamps

log() { printf '[install] %s\n' "$*"; }

# stamp NAME FILES... : succeeds (skip) if FILES hash like last time.
stamp_ok() {
  local name="$1"; shift
  local h; h="$(cat "$@" | sha256sum | cut -d' ' -f1)"
  [[ -f "work/stamps/$name" && "$(cat "work/stamps/$name")" == "$h" ]]
}
stamp_set() {
  local name="$1"; shift
  cat "$@" | sha256sum | cut -d' ' -f1 > "work/stamps/$name"
}

start=$SECONDS

# ---- Python --------------------------------------------------------------
PY="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
  log "python: creating venv with $($PY --version)"
  "$PY" -m venv .venv
  rm -f work/stamps/python
fi
if stamp_ok python python/requirements.txt; then
  log "python: up to date"
else
  log "python: pip install -r python/requirements.txt"
  .venv/bin/pip install -q --disable-pip-version-check -r python/requirements.txt
  stamp_set python python/requirements.txt
fi

# ---- Node (kafkajs) ------------------------------------------------------
if [[ -d node/node_modules ]] && stamp_ok node node/package.json node/package-lock.json; then
  log "node: up to date"
else
  log "node: npm ci"
  (cd node && npm ci --no-audit --no-fund --loglevel=error)
  stamp_set node node/package.json node/package-lock.json
fi

# ---- Java (kafka-clients) ------------------------------------------------
java_inputs=(java/pom.xml $(find java/src -type f | sort))
if [[ -f java/target/classpath.txt ]] && ls java/target/arus-compat-java-*.jar >/dev/null 2>&1 \
    && stamp_ok java "${java_inputs[@]}"; then
  log "java: up to date"
else
  log "java: mvn package"
  # (sed drops the bare colour-reset codes Maven 3.8 prints even with -q -B)
  (cd java && mvn -q -B -Dstyle.color=never -DskipTests package 2>&1 | sed 's/\x1b\[0m//g')
  stamp_set java "${java_inputs[@]}"
fi

# ---- Go (franz-go) -------------------------------------------------------
log "go: go build"
(cd go && go build -o ../work/bin/franzgo .)

log "done in $((SECONDS - start))s"
