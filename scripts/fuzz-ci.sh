#!/usr/bin/env bash
# Short coverage-guided fuzzing of every cargo-fuzz target in fuzz/ (CI step of
# scripts/test-all.sh): each target runs FUZZ_SECONDS (default 30) with one job on a temporary
# copy of its committed corpus (fuzz/corpus/<target>/, never written to), and the script fails
# if any target crashes, panics, times out or exceeds the memory limit, printing the
# reproducer. See fuzz/README.md for long runs.
#
# Toolchain: `cargo +nightly fuzz` (AddressSanitizer) when a nightly toolchain is installed or
# installable with rustup; otherwise stable with RUSTC_BOOTSTRAP=1 and `--sanitizer none`
# (coverage-guided still, without ASan).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
RSS_LIMIT_MB="${FUZZ_RSS_LIMIT_MB:-2048}"
TARGETS=(request_decoder record_batch coordinator_records)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

toolchain=()
sanitizer=()
env_prefix=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
elif rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
    toolchain=(+nightly)
else
    echo "fuzz-ci: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1 and no sanitizer"
    env_prefix=(env RUSTC_BOOTSTRAP=1)
    sanitizer=(--sanitizer none)
fi
fuzz() {
    "${env_prefix[@]}" cargo "${toolchain[@]}" fuzz "$@"
}

echo "== cargo fuzz build (${toolchain[*]:-stable} ${sanitizer[*]:-address sanitizer})"
(cd fuzz && fuzz build -O "${sanitizer[@]}")

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${TARGETS[@]}"; do
    mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
    cp -r "fuzz/corpus/$t/." "$work/$t/corpus/"
    echo "== fuzz $t (${SECONDS_PER_TARGET}s, $(find "fuzz/corpus/$t" -type f | wc -l) corpus entries)"
    start=$(date +%s)
    set +e
    (cd fuzz && timeout $((SECONDS_PER_TARGET + 300)) \
        "${env_prefix[@]}" cargo "${toolchain[@]}" fuzz run -O "${sanitizer[@]}" "$t" \
        "$work/$t/corpus" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_LIMIT_MB" -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$work/$t/artifacts/") >"$work/$t.log" 2>&1
    rc=$?
    set -e
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' "$work/$t.log" || true
    grep -E '^#[0-9]+\s+(DONE|pulse)' "$work/$t.log" | tail -1 || true
    echo "   rc=$rc in $(($(date +%s) - start))s"
    artifacts=("$work/$t/artifacts/"*)
    if [ "$rc" -ne 0 ] || [ -e "${artifacts[0]}" ]; then
        failed+=("$t")
        echo "!! $t failed:"
        grep -E -A2 'panicked at|^==[0-9]+==ERROR|^SUMMARY|out-of-memory|timeout after' "$work/$t.log" | head -40 || true
        echo "!! last lines of its log:"
        tail -30 "$work/$t.log"
        mkdir -p "fuzz/artifacts/$t"
        for a in "${artifacts[@]}"; do
            [ -e "$a" ] || continue
            cp "$a" "fuzz/artifacts/$t/"
            echo "!! reproducer fuzz/artifacts/$t/$(basename "$a") ($(wc -c <"$a") bytes):"
            od -A x -t x1z -v "$a" | head -40
            echo "!! reproduce with: (cd fuzz && cargo ${toolchain[*]} fuzz run -O ${sanitizer[*]} $t artifacts/$t/$(basename "$a"))"
        done
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz-ci: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz-ci: all ${#TARGETS[@]} targets ran ${SECONDS_PER_TARGET}s without a crash"
