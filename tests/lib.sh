# Helpers for the suites that start servers and relays (sourced, POSIX sh, from the top of the
# tree, after setting $L, the suite's log directory, and $CERTS): tests/faults/run.sh,
# tests/flood/run.sh, tests/shutdown/run.sh, tests/interop/run.sh. Every wait is bounded. Sourcing it sets $passed, $failed and $pids
# (processes to kill at exit: append each one started) and the traps that kill them.
#   built SUITE CMD...  runs a build step (output to $L/build.log); if it fails, shows the log,
#                       prints "0 passed, 1 failed" and exits
#   need_certs          makes the test certificates in $CERTS if they are missing
#   result NAME OK WHY  counts a case and prints "PASS NAME: WHY" or "FAIL NAME: WHY", then the
#                       last lines of each non-empty file that `result_logs NAME` (the suite's)
#                       lists, without the lines matching $RESULT_HIDE if set
#   now / since T       a wall-clock time, and the seconds since T (one decimal)
#   alive PID           the process exists and is not a zombie
#   wait_listen FILE PID  the port that PID printed as "listening on PORT" in FILE (up to ~15 s)
#   stop PID            SIGTERM, up to 5 s to exit, then SIGKILL; its exit status (1 if killed)
#   wait_exit PID SECS  up to SECS s for PID to exit by itself, then `stop`; its exit status
#                       (137 and a line saying so if it had to be stopped)
#   relay_summary FILE  one line of what tests/faults/relay.c did (its output in FILE): the
#                       non-zero counts per direction
#   big_chain CERTS OUT a certificate chain of about 5 KB in OUT: the server's certificate and
#                       CA from CERTS, then certificates the client never needs, so that a
#                       server's first flight exceeds 3x a client's Initial and the
#                       amplification limit has to hold it back

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

alive() {
    [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}

wait_listen() {
    i=0
    while [ $i -lt 150 ]; do
        p=$(sed -n 's/^listening on //p' "$1")
        [ -n "$p" ] && { echo "$p"; return 0; }
        alive "$2" || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

stop() {
    kill -TERM "$1" 2>/dev/null
    i=0
    while alive "$1" && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if alive "$1"; then
        echo "  process $1 ignored SIGTERM for 5 s: killed"
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null
        return 1
    fi
    wait "$1"
}

wait_exit() {
    i=0
    while alive "$1" && [ $i -lt $(($2 * 10)) ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if alive "$1"; then
        echo "  process $1 still running after $2 s: stopped"
        stop "$1"
        return 137
    fi
    wait "$1"
}

relay_summary() {
    awk '/^relay: (c2s|s2c): seen/ {
        gsub(/[(),:]/, ""); out = $2 " " $4 " datagrams"
        for (i = 9; i < NF; i += 2) if ($(i + 1) != 0) out = out ", " $(i + 1) " " $i
        line = line (line ? "; " : "") out
    } END { print line }' "$1"
}

big_chain() {
    cat "$1/chain.pem" "$1/alt-chain.pem" "$1/client-chain.pem" "$1/badclient-chain.pem" \
        "$1/other-ca.pem" "$1/alt-chain.pem" "$1/client-chain.pem" >"$2"
}

passed=0
failed=0
pids=""

cleanup() {
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

built() {
    _suite=$1
    shift
    "$@" >>"$L/build.log" 2>&1 && return 0
    cat "$L/build.log"
    echo "$_suite: building failed: $*"
    echo "0 passed, 1 failed"
    exit 1
}

need_certs() {
    [ -f "$CERTS/ca.pem" ] || cargo run --release --quiet --example gencert -- "$CERTS" >/dev/null 2>&1
}

result() {
    if [ "$2" = 1 ]; then
        passed=$((passed + 1))
        echo "PASS $1${3:+: $3}"
    else
        failed=$((failed + 1))
        echo "FAIL $1${3:+: $3}"
        for f in $(result_logs "$1"); do
            [ -s "$f" ] || continue
            echo "  --- $f (last lines)"
            if [ -n "${RESULT_HIDE:-}" ]; then grep -v "$RESULT_HIDE" "$f"; else cat "$f"; fi | tail -n 12 | sed 's/^/    /'
        done
    fi
}
