#!/bin/sh
# One of two data-race runs: the threaded C tests (test_blocking, test_poll, test_assist,
# test_datagram; TSAN_TESTS names others or fewer) against a build of the library instrumented
# with ThreadSanitizer, which sees Rust's atomics and futex-based locks by itself. The other,
# tests/helgrind.sh, runs them under valgrind's helgrind against a build that announces its
# locks and atomics (the valgrind-annotations feature, src/sync.rs). They complement each
# other: TSan instruments the library's code (std's is not rebuilt) and needs nightly; helgrind
# sees every instruction of the process, C tests and glibc included, checks lock order, and
# needs no special toolchain.
#
# Needs a nightly Rust toolchain (-Zsanitizer=thread). Without one this prints a SKIP line
# and counts nothing (neither passed nor failed). Any ThreadSanitizer report fails the run.
# Ends with `N passed, N failed`.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
out="$BUILD/tsan"
mkdir -p "$out"
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "SKIP tsan: no nightly Rust toolchain here (rustup toolchain install nightly)"
    echo "0 passed, 0 failed"
    exit 0
fi
# Instrumented library (its own target dir; std stays uninstrumented, generic code from it
# is instrumented where it is used).
if ! RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer" \
    cargo +nightly build --quiet --release --lib --target x86_64-unknown-linux-gnu \
    --target-dir target/tsan >"$out/build.log" 2>&1; then
    tail -n 30 "$out/build.log"
    echo "FAIL tsan (library build)"
    echo "0 passed, 1 failed"
    exit 1
fi
lib=target/tsan/x86_64-unknown-linux-gnu/release/libosslquic.a
passed=0
failed=0
for name in ${TSAN_TESTS:-test_blocking test_poll test_assist test_datagram}; do
    log="$out/$name.log"
    if ! ${CC:-cc} -fsanitize=thread -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Iinclude \
        "tests/c/$name.c" tests/tsan/shim.c "$lib" -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc \
        -o "$out/$name" >"$log" 2>&1; then
        echo "FAIL tsan/$name (build)"; sed 's/^/    | /' "$log" | tail -n 20
        failed=$((failed + 1))
        continue
    fi
    if TEST_SCALE=0.2 TEST_TIMEOUT=240 \
        TSAN_OPTIONS="halt_on_error=0 exitcode=66 suppressions=$(pwd)/tests/tsan/suppressions.txt" \
        timeout 300 "$out/$name" >"$log" 2>&1 && ! grep -q "WARNING: ThreadSanitizer" "$log"; then
        echo "PASS tsan/$name"
        passed=$((passed + 1))
    else
        echo "FAIL tsan/$name ($(grep -c 'WARNING: ThreadSanitizer' "$log") reports)"
        sed 's/^/    | /' "$log" | tail -n 60
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
