#!/bin/sh
# The DDD demo tests: builds every demo variant (c-demos/build-ddd.sh), runs every
# tests/demos/test-*.sh (each bounded by `timeout`), and ends with `N passed, N failed`
# counted from their "PASS name" / "FAIL name: why" lines. A script that exits non-zero
# without printing a FAIL line counts as one failure. Logs: build/ddd/logs/.
#   run.sh [test-NAME.sh...]   only those scripts
set -u
cd "$(dirname "$0")/../.."
: "${BUILD:=build}"
mkdir -p "$BUILD/ddd/logs"
passed=0
failed=0

# A demo that does not compile is one failure here; the tests of the others still run (and
# the tests needing the missing binaries fail, naming the reason).
if ! sh c-demos/build-ddd.sh >"$BUILD/ddd/logs/build.log" 2>&1; then
    grep -v '^build-ddd: build/' "$BUILD/ddd/logs/build.log" | tail -n 30
    echo "FAIL build: some DDD demos did not compile (build/ddd/logs/build.log)"
    failed=1
fi
sed -n 's/^build-ddd: not built: /not built: /p' "$BUILD/ddd/logs/build.log"
[ -f "$BUILD/certs/ca.pem" ] || cargo run --release --quiet --example gencert -- "$BUILD/certs" >/dev/null 2>&1

if [ $# -gt 0 ]; then
    scripts=""
    for s in "$@"; do scripts="$scripts tests/demos/$(basename "$s")"; done
else
    scripts=$(ls tests/demos/test-*.sh 2>/dev/null)
fi
for t in $scripts; do
    echo "== $t"
    out="$BUILD/ddd/logs/$(basename "$t" .sh).txt"
    timeout -k 10 900 sh "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    p=$(grep -c '^PASS ' "$out")
    f=$(grep -c '^FAIL ' "$out")
    if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
        echo "FAIL $(basename "$t"): exited with status $rc"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
