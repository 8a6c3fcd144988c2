# Helpers for the suites that start servers and relays (sourced, POSIX sh):
# tests/faults/run.sh, tests/flood/run.sh. Every wait is bounded.
#   now / since T       a wall-clock time, and the seconds since T (one decimal)
#   alive PID           the process exists and is not a zombie
#   wait_listen FILE PID  the port that PID printed as "listening on PORT" in FILE (up to ~15 s)
#   stop PID            SIGTERM, up to 5 s to exit, then SIGKILL; its exit status (1 if killed)
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

big_chain() {
    cat "$1/chain.pem" "$1/alt-chain.pem" "$1/client-chain.pem" "$1/badclient-chain.pem" \
        "$1/other-ca.pem" "$1/alt-chain.pem" "$1/client-chain.pem" >"$2"
}
