#!/bin/sh
# The valgrind race run: the threaded C tests (test_blocking, test_poll, test_assist,
# test_concurrency, test_datagram) under helgrind, against a build of the library with the
# `valgrind-annotations` feature, which tells helgrind about the library's locks and atomics
# through client requests (src/sync.rs; docs/ARCHITECTURE.md, "Races: helgrind and
# ThreadSanitizer"). Without it helgrind reports every lock-protected access (6,000+ errors
# from 1,000+ contexts in test_blocking alone). Any error helgrind reports fails the run:
# races, lock-order inversions, misuse of the pthread API.
#
# Helgrind rather than DRD: it also checks lock order (a potential deadlock is an error), and
# its documented ANNOTATE_RWLOCK_* requests describe a home-made lock directly.
#
# Environment: HELGRIND_SCALE (TEST_SCALE for the tests, default 0.12: 24 + 16 connections in
# test_blocking), HELGRIND_CONC_COUNT (datagrams per pair test in test_concurrency, default
# 100000), HELGRIND_TESTS (names to run, default all five). Takes about 4 minutes on 2 cores
# (a first run also builds the library: about 2 more).
# The tests run with QU_GROUPS=x25519 (tests/c/quicutil.h): under helgrind an X25519MLKEM768
# handshake is slow enough to reach the blocking tests' idle timeouts.
# The only time bound is the tests' watchdog (TEST_TIMEOUT): test_blocking's own deadline for
# its many-connections sub-tests (BLOCKING_DEADLINE_S, 100 s, a bound for uninstrumented
# runs) is set to the same, since this run checks races, not speed (on a loaded 2-core
# machine each sub-test took 90 s and more under helgrind, and missing the deadline ended
# the run with threads in the middle of calls: helgrind then reports each thread still
# holding a lock at exit).
# Without valgrind this prints a SKIP line and counts nothing. Ends with `N passed, N failed`.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
out="$BUILD/helgrind"
mkdir -p "$out"
if ! command -v valgrind >/dev/null 2>&1; then
    echo "SKIP helgrind: valgrind is not installed"
    echo "0 passed, 0 failed"
    exit 0
fi
# Release with full debug info (inlined frames named in reports), in its own target dir.
if ! CARGO_PROFILE_RELEASE_DEBUG=2 cargo build --quiet --release --lib \
    --features valgrind-annotations --target-dir target/helgrind >"$out/build.log" 2>&1; then
    tail -n 30 "$out/build.log"
    echo "FAIL helgrind (library build)"
    echo "0 passed, 1 failed"
    exit 1
fi
lib=target/helgrind/release/libosslquic.a
if [ ! -f "${OSSLQUIC_CERTS:-build/certs}/ca.pem" ]; then
    cargo run --release --quiet --example gencert -- "${OSSLQUIC_CERTS:-build/certs}" \
        >"$out/gencert.log" 2>&1
fi
passed=0
failed=0
for name in ${HELGRIND_TESTS:-test_blocking test_poll test_assist test_concurrency test_datagram}; do
    log="$out/$name.log"
    if ! ${CC:-cc} -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -Iinclude "tests/c/$name.c" \
        "$lib" -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -o "$out/$name" >"$log" 2>&1; then
        echo "FAIL helgrind/$name (build)"
        sed 's/^/    | /' "$log" | tail -n 20
        failed=$((failed + 1))
        continue
    fi
    start=$(date +%s)
    TEST_SCALE=${HELGRIND_SCALE:-0.12} CONC_COUNT=${HELGRIND_CONC_COUNT:-100000} \
        QU_GROUPS=x25519 TEST_TIMEOUT=400 BLOCKING_DEADLINE_S=400 \
        timeout 460 valgrind --tool=helgrind --error-exitcode=66 \
        --suppressions=tests/helgrind.supp "$out/$name" >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    errors=$(sed -n -E 's/.*ERROR SUMMARY: ([0-9]+) errors.*/\1/p' "$log" | tail -n 1)
    # A client request helgrind does not know would mean the annotations are not understood.
    if [ "$rc" -eq 0 ] && [ "${errors:-x}" = 0 ] && ! grep -q "unhandled client request" "$log"
    then
        echo "PASS helgrind/$name (${secs} s)"
        passed=$((passed + 1))
    else
        echo "FAIL helgrind/$name (exit $rc, ${errors:-?} errors, ${secs} s)"
        # The first reports, then the end of the log.
        awk '/^==[0-9]+== (Possible data race|Thread #[0-9]+:|Lock at)/ {n++} n && n <= 2' \
            "$log" | head -n 60 | sed 's/^/    | /'
        echo "    | ..."
        tail -n 25 "$log" | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
