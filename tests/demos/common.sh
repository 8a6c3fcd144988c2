# Shared by tests/demos/test-*.sh (sourced, POSIX sh). Each test script prints one
# "PASS name" or "FAIL name: why" line per check; tests/demos/run.sh counts them.
#   start NAME CMD...   starts a server (stdout NAME.out, stderr NAME.log in $L), waits up to
#                       15 s for "listening on PORT"; sets $port and $spid; 1 if it did not start
#   stop                SIGTERM to $spid, up to 10 s to exit (then SIGKILL); 0 if it exited 0
#   pass NAME / fail NAME WHY (shows the last lines of $L/NAME.log and $L/NAME.client)
#   pattern_file N FILE writes the N-byte answer to "/N" (byte i = i % 251)
# Every process started through `start` or `bg` is killed by the EXIT trap.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
: "${BUILD:=build}"
O="$BUILD/ddd"
L="$BUILD/ddd/logs"
PY="$BUILD/venv/bin/python"
mkdir -p "$L"
# A private copy of the test certificates: other suites regenerate build/certs, and a server
# holding the old chain would then fail every client holding the new CA.
[ -f "$BUILD/certs/ca.pem" ] || cargo run --release --quiet --example gencert -- "$BUILD/certs" >/dev/null 2>&1
CERTS="$L/certs.$$"
mkdir -p "$CERTS"
cp "$BUILD/certs/ca.pem" "$BUILD/certs/chain.pem" "$BUILD/certs/key.pem" "$CERTS/"
_pids=""

_cleanup() {
    for p in $_pids; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $_pids; do
        i=0
        while alive "$p" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$p" 2>/dev/null || true
    done
}
trap '_cleanup; rm -rf "$CERTS"' EXIT
trap '_cleanup; rm -rf "$CERTS"; exit 130' INT TERM

# alive PID: the process exists and is not a zombie.
alive() {
    [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}

start() {
    _name=$1
    shift
    : >"$L/$_name.out"
    : >"$L/$_name.log"
    # timeout: the last resort against a server that never stops (it forwards SIGTERM).
    timeout -k 5 300 "$@" >"$L/$_name.out" 2>"$L/$_name.log" &
    spid=$!
    _pids="$_pids $spid"
    port=""
    i=0
    while [ $i -lt 150 ]; do
        port=$(sed -n 's/^listening on //p' "$L/$_name.out")
        [ -n "$port" ] && return 0
        alive "$spid" || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "  $_name: server did not start:"
    tail -n 20 "$L/$_name.log" | sed 's/^/    /'
    return 1
}

stop() {
    kill -TERM "$spid" 2>/dev/null
    i=0
    while alive "$spid" && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if alive "$spid"; then
        echo "  server ignored SIGTERM for 10 s: killed"
        kill -KILL "$spid" 2>/dev/null
        wait "$spid" 2>/dev/null
        return 1
    fi
    wait "$spid"
    _rc=$?
    [ "$_rc" = 0 ] || echo "  server exited with status $_rc"
    return "$_rc"
}

pass() {
    echo "PASS $1"
}

fail() {
    echo "FAIL $1: $2"
    for f in "$L/$1.client" "$L/$1.log"; do
        [ -s "$f" ] && { echo "  --- $f (last lines)"; tail -n 12 "$f" | sed 's/^/    /'; }
    done
    return 0
}

# result NAME OK WHY: pass or fail.
result() {
    if [ "$2" = 1 ]; then pass "$1"; else fail "$1" "$3"; fi
}

pattern_file() {
    python3 -c 'import sys
n = int(sys.argv[1])
b = bytes(range(251))
sys.stdout.buffer.write((b * (n // 251 + 1))[:n])' "$1" >"$2"
}

# need_bin FILE NAME: 0 if the demo binary exists; else a FAIL line for NAME (with the reason
# build-ddd.sh recorded) and 1.
need_bin() {
    [ -x "$1" ] && return 0
    why=$(grep "^$(basename "$1"):" "$O/missing" 2>/dev/null | sed 's/^[^:]*: //')
    echo "FAIL $2: $(basename "$1") not built${why:+ ($why)}"
    return 1
}

need_py() {
    "$PY" -c 'import aioquic' >/dev/null 2>&1 && return 0
    echo "  aioquic is not installed in $BUILD/venv (run tests/setup.sh)"
    return 1
}
