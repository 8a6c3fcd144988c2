#!/bin/sh
# Coverage-guided fuzzing with cargo-fuzz (libFuzzer, AddressSanitizer) on the nightly toolchain.
#   sh tests/fuzz.sh            the `fuzz` suite of `make test`: replays every committed corpus
#                               (fuzz/corpus/<target>), then fuzzes each target for
#                               FUZZ_TEST_SECONDS (default 10); prints PASS/FAIL lines and
#                               `N passed, N failed` last
#   sh tests/fuzz.sh --run      `make fuzz`: fuzzes each target for FUZZ_SECONDS (default 60)
#                               and prints executions per second, corpus size and coverage
# FUZZ_TARGETS (default: all four) picks targets. New inputs go to build/fuzz-corpus/<target>
# (the committed corpus is read, never written); crashes to build/fuzz-artifacts/<target>/.
# One fuzzing process at a time; every run is bounded by libFuzzer's own time limit and by
# `timeout`. Installs cargo-fuzz with `cargo install` when it is missing.
set -u
cd "$(dirname "$0")/.."
: "${BUILD:=build}"
mode=test
[ "${1:-}" = "--run" ] && mode=run
targets=${FUZZ_TARGETS:-quic_datagrams tls_stream bio_calls ssl_calls}
if [ "$mode" = run ]; then secs=${FUZZ_SECONDS:-60}; else secs=${FUZZ_TEST_SECONDS:-10}; fi
passed=0
failed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
finish() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; exit $?; }

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fail "fuzz: no nightly toolchain (rustup toolchain install nightly)"
    finish
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    if ! cargo install cargo-fuzz --locked >"$BUILD/fuzz-install.log" 2>&1; then
        tail -n 5 "$BUILD/fuzz-install.log"
        fail "fuzz: could not install cargo-fuzz (see $BUILD/fuzz-install.log); install it with 'cargo install cargo-fuzz'"
        finish
    fi
fi

mkdir -p "$BUILD" "$BUILD/reliability"
: >"$BUILD/reliability/fuzz.txt"
t0=$(date +%s)
if ! cargo +nightly fuzz build --fuzz-dir fuzz >"$BUILD/fuzz-build.log" 2>&1; then
    tail -n 30 "$BUILD/fuzz-build.log"
    fail "fuzz: build (see $BUILD/fuzz-build.log)"
    finish
fi
echo "fuzz: targets built in $(($(date +%s) - t0)) s"
bin=fuzz/target/x86_64-unknown-linux-gnu/release

# Options every run shares: a hang is an input taking over 10 s, memory is bounded.
opts="-timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1"

# stats LOG: "execs/s N, corpus N (SIZE), cov N, ft N" from libFuzzer's last status line.
stats() {
    line=$(grep -E '#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$1" | tail -n 1)
    cov=$(echo "$line" | sed -n -E 's/.*cov: ([0-9]+).*/\1/p')
    ft=$(echo "$line" | sed -n -E 's/.*ft: ([0-9]+).*/\1/p')
    corp=$(echo "$line" | sed -n -E 's/.*corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p')
    execs=$(sed -n -E 's/^stat::number_of_executed_units:[[:space:]]*([0-9]+)/\1/p' "$1" | tail -n 1)
    rate=$(sed -n -E 's/^stat::average_exec_per_sec:[[:space:]]*([0-9]+)/\1/p' "$1" | tail -n 1)
    echo "execs ${execs:-?} (${rate:-?}/s), corpus ${corp:-?}, cov ${cov:-?}, ft ${ft:-?}"
}

for t in $targets; do
    seeds=fuzz/corpus/$t
    work=$BUILD/fuzz-corpus/$t
    art=$BUILD/fuzz-artifacts/$t/
    mkdir -p "$work" "$art"
    log=$BUILD/fuzz-$t.log
    if [ "$mode" = test ]; then
        # Every committed input once: a crash, leak or sanitizer report fails it.
        n=$(find "$seeds" -type f | wc -l)
        if timeout 300 "$bin/$t" $opts -runs=0 -artifact_prefix="$art" "$seeds" >"$log.replay" 2>&1; then
            pass "fuzz: $t replays its $n corpus inputs"
        else
            grep -E 'ERROR|SUMMARY|panicked|Test unit written' "$log.replay" | head -n 8
            fail "fuzz: $t replay of $seeds (see $log.replay)"
        fi
    fi
    timeout $((secs + 120)) "$bin/$t" $opts -max_total_time="$secs" -artifact_prefix="$art" \
        "$work" "$seeds" >"$log" 2>&1
    rc=$?
    if [ "$rc" = 0 ]; then
        pass "fuzz: $t ${secs}s: $(stats "$log")"
        echo "fuzz: $t: ${n:+$n corpus inputs replayed, }${secs} s fuzzed: $(stats "$log")" >>"$BUILD/reliability/fuzz.txt"
    else
        grep -E 'ERROR|SUMMARY|panicked|Test unit written' "$log" | head -n 8
        fail "fuzz: $t ${secs}s (rc $rc; see $log; crash inputs in $art)"
    fi
done
finish
