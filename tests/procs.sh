# Process helpers for the test scripts (sourced, POSIX sh): tests/faults/run.sh,
# tests/shutdown/run.sh. Every wait polls with a bound. A script adds the process id of
# everything it starts in the background to $pids: the EXIT trap set here kills them all.
#   alive PID             the process exists and is not a zombie
#   wait_listen FILE PID  the port PID printed as "listening on PORT" in FILE (~15 s bound)
#   stop PID              SIGTERM, up to 5 s to exit, then SIGKILL; the exit status (1 if killed)
#   now, since T0         wall-clock seconds; seconds since T0, one decimal
#   wait_exit PID SECS    up to SECS s for PID to exit by itself, then stop; its exit status
#   relay_summary FILE    one line of what tests/faults/relay.c did (its output in FILE): the
#                         non-zero counts per direction

pids=""
cleanup() {
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

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

# wait_exit PID SECS: up to SECS seconds for PID to exit by itself, then `stop`; its exit
# status (137 and a line saying so if it had to be stopped).
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
