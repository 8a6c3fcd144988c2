#!/bin/sh
# Runs every test suite and ends with one line: `N passed, N failed`.
# Suites: cargo tests, lint (`make lint`), header/link checks, the C tests (plain, ASan/UBSan,
# valgrind), the threaded C tests under ThreadSanitizer and under valgrind's helgrind, demos,
# interop with real QUIC peers (aioquic, ngtcp2), QUIC fault cases through an impairment relay
# (tests/faults), an Initial flood (tests/flood), nothing lost by a shutdown right after a
# large write (tests/shutdown), a fleet of three servers behind HAProxy and an nftables QUIC
# balancer in network namespaces (tests/fleet), TLS over TCP interop (openssl s_client/s_server, Python ssl),
# hostile TLS peers, OpenSSL's constants, OpenSSL's own programs (tests/openssl), `make
# install` with linking through pkg-config (OpenSSL's guide demos, fetched by then), and the
# fuzz targets (corpora replayed, each target fuzzed briefly: tests/fuzz.sh).
set -u
cd "$(dirname "$0")/.."
mkdir -p build
# Suites leave their figures here (one file each) for the reliability summary at the end.
rm -rf build/reliability
mkdir -p build/reliability
passed=0
failed=0
failures=""

# A suite that prints `N passed, N failed` last contributes its counts; otherwise it is one test.
suite() {
    name=$1
    shift
    log="build/test-$name.log"
    echo "== $name: $*"
    "$@" >"$log" 2>&1
    rc=$?
    tail -n 25 "$log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
        f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    elif [ "$rc" = 0 ]; then
        p=1; f=0
    else
        p=0; f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$f" != 0 ] && failures="$failures $name"
}

cargo_tests() {
    out=$(cargo test --release 2>&1)
    rc=$?
    echo "$out" | grep -E '^test |test result|panicked|error' | tail -n 60
    p=$(echo "$out" | sed -n -E 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1/p' | awk '{s+=$1} END {print s+0}')
    f=$(echo "$out" | sed -n -E 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\2/p' | awk '{s+=$1} END {print s+0}')
    [ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
    echo "$p passed, $f failed"
    return "$rc"
}

suite cargo cargo_tests
# `make lint` (rustfmt --check, clippy -D warnings on all targets): one test.
suite lint make --no-print-directory lint
suite header sh tests/check-header.sh
suite link sh tests/check-link.sh
suite consts sh tests/check-openssl-consts.sh
# Test certificates (a CA and a server certificate for localhost/127.0.0.1/::1).
cargo run --release --quiet --example gencert -- build/certs >/dev/null 2>&1 || echo "gencert failed"
suite c sh tests/run-c.sh
suite tsan sh tests/tsan.sh
suite helgrind sh tests/helgrind.sh
suite demo sh c-demos/run-demo.sh
suite demos sh tests/demos/run.sh
suite interop sh tests/interop/run.sh
# Fault cases through the impairment relay (loss, corruption, blackhole, amplification limit).
suite faults sh tests/faults/run.sh
# An Initial flood with Retry on and off while our client connects and transfers (tests/flood).
suite flood sh tests/flood/run.sh
# A large write, then at once a graceful shutdown (QUIC and TLS): every byte reaches every peer.
suite shutdown sh tests/shutdown/run.sh
# Three servers behind real balancers, in network namespaces (root; skips with a line without).
suite fleet sh tests/fleet/run.sh
suite tls sh tests/tls/run.sh
suite openssl bash tests/openssl/run.sh
suite install sh tests/install.sh
suite fuzz sh tests/fuzz.sh

# Reliability summary (issue 14): fuzzing, fault runs, floods and bounds, as the suites
# measured them in this run.
echo "== reliability summary"
if ls build/reliability/*.txt >/dev/null 2>&1; then
    cat build/reliability/*.txt
else
    echo "(no suite left figures)"
fi
[ -n "$failures" ] && echo "failed suites:$failures"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
