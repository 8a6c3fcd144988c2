#!/bin/sh
# `make bench`, DDD demos part: each concurrency model's QUIC build next to its TLS build,
# loaded by ddd-client with 32 concurrent clients on loopback.
#   small: as many connections as fit in BENCH_DDD_SECS seconds (default 3), each fetching
#          /100 (one request; QUIC: one stream): connections per second
#   bulk:  32 connections at once, each fetching /10000000: MB/s of answer bytes
# Models: mt, fork, prefork (4 workers), and async-pollable, async-nonpollable,
# async-unaddressed when their binaries build. TLS = the plain TLS-over-TCP build (accept(2)).
# Every byte is checked by the client; a run with a failed connection shows "FAIL".
# Then, issue 13's threaded-vs-single figure for the DDD demos over QUIC (section mt-scaling):
# ddd-mt-quic (a thread per connection) against ddd-async-pollable-quic with DEMO_THREADS=1
# (one libuv loop thread), under the same ddd-client load: 64 clients, each connection asking
# up to BENCH_DDD_MT_STREAMS requests for /10240 one after another (one stream each). Goals:
# threaded/single req/s >= 0.95, server CPU per request <= 1.10, p99 latency <= 1.5.
# Every server is stopped here; every command is bounded by `timeout`.
#   BENCH_DDD_SECS         seconds of the small-fetch load per cell (default 3)
#   BENCH_DDD_ONLY         space-separated models to run, and mt-scaling for the threaded
#                          figure (default: all that exist, then mt-scaling)
#   BENCH_DDD_MT_SECS      seconds of each timed mt-scaling load (default 5)
#   BENCH_DDD_MT_ROUNDS    rounds of mt-scaling, each server once a round (default 3)
#   BENCH_DDD_MT_STREAMS   requests per connection in mt-scaling (default 100)
set -u
cd "$(dirname "$0")/.."
: "${BUILD:=build}"
O="$BUILD/ddd"
L="$O/bench"
SECS=${BENCH_DDD_SECS:-3}
mkdir -p "$L"

sh c-demos/build-ddd.sh --quiet >"$L/build.log" 2>&1 || echo "bench ddd: some demos did not build (see $L/build.log)"
[ -f "$BUILD/certs/ca.pem" ] || cargo run --release --quiet --example gencert -- "$BUILD/certs" >/dev/null 2>&1
# A private copy: another suite may regenerate build/certs meanwhile.
CERTS="$L/certs"
mkdir -p "$CERTS"
cp "$BUILD/certs/ca.pem" "$BUILD/certs/chain.pem" "$BUILD/certs/key.pem" "$CERTS/"

spid="" cpid=""
cleanup() {
    [ -n "$cpid" ] && kill -TERM "$cpid" 2>/dev/null
    [ -n "$spid" ] && kill -TERM "$spid" 2>/dev/null
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

alive() {
    [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}

# serve BIN NAME: starts BIN on an ephemeral port; sets $port and $spid (0 if it failed).
serve() {
    : >"$L/$2.out"
    DEMO_WORKERS=4 timeout -k 5 300 "$1" "$CERTS/chain.pem" "$CERTS/key.pem" 0 >"$L/$2.out" 2>"$L/$2.log" &
    spid=$!
    i=0
    while [ $i -lt 150 ]; do
        port=$(sed -n 's/^listening on //p' "$L/$2.out")
        [ -n "$port" ] && return 0
        alive "$spid" || break
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

unserve() {
    kill -TERM "$spid" 2>/dev/null
    i=0
    while alive "$spid" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    alive "$spid" && kill -KILL "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    spid=""
}

# field SUMMARY NAME: the number after NAME in a ddd-client summary line.
field() {
    echo "$1" | awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }'
}

# cell MODEL VARIANT: runs both loads against one server; sets $small and $bulk.
cell() {
    small=FAIL bulk=FAIL
    bin="$O/ddd-$1-$2"
    client="$O/ddd-client-tls"
    [ "$2" = quic ] && client="$O/ddd-client-quic"
    [ -x "$bin" ] || { small=n/a bulk=n/a; return; }
    serve "$bin" "$1-$2" || { unserve; return; }
    ports="$port"
    case $1 in mt | prefork | async-*) ports="$port,$((port + 1)),$((port + 2))" ;; esac
    # The async demos may listen on one port only: use the first then.
    grep -q "ports" "$L/$1-$2.log" || ports="$port"
    out=$(timeout $((SECS + 60)) "$client" --ca "$CERTS/ca.pem" -q -c 32 -d "$SECS" -p /100 --ports "$ports" \
        127.0.0.1 "$port" 2>>"$L/$1-$2.client")
    [ $? = 0 ] && small=$(field "$out" "conn/s")
    echo "$1 $2 small: $out" >>"$L/results"
    out=$(timeout 120 "$client" --ca "$CERTS/ca.pem" -q -c 32 -n 32 -p /10000000 --ports "$ports" \
        127.0.0.1 "$port" 2>>"$L/$1-$2.client")
    [ $? = 0 ] && bulk=$(field "$out" "MB/s")
    echo "$1 $2 bulk: $out" >>"$L/results"
    unserve
}

ratio() {
    case "$1$2" in *[!0-9.]*) echo "-" ;; *) awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }' ;; esac
}

only=${BENCH_DDD_ONLY:-"mt fork prefork async-pollable async-nonpollable async-unaddressed mt-scaling"}
models="" scaling=0
for m in $only; do
    if [ "$m" = mt-scaling ]; then scaling=1; else models="$models $m"; fi
done

# The models' table: each model's QUIC build beside its TLS build.
table() {
    echo
    echo "DDD demos: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "ddd-client -c 32 on loopback; client and server share the cores. small = /100 per connection for"
    echo "${SECS} s (connections/s, full handshake each, certificate verified); bulk = 32 x /10000000 at once (MB/s)."
    echo "ratio = QUIC / TLS. TLS = the same demo built for TLS over TCP."
    printf '%-18s | %10s %10s %6s | %10s %10s %6s\n' "model" "TLS conn/s" "QUIC conn/s" "ratio" "TLS MB/s" "QUIC MB/s" "ratio"
    for m in $models; do
        [ -x "$O/ddd-$m-tls" ] || [ -x "$O/ddd-$m-quic" ] || continue
        cell "$m" tls
        ts=$small tb=$bulk
        cell "$m" quic
        qs=$small qb=$bulk
        printf '%-18s | %10s %10s %6s | %10s %10s %6s\n' "$m" "$ts" "$qs" "$(ratio "$qs" "$ts")" "$tb" "$qb" "$(ratio "$qb" "$tb")"
    done
    echo "(client summaries: $L/results)"
}

# ---------------------------------------------------------------- mt-scaling (issue 13)
MT_SECS=${BENCH_DDD_MT_SECS:-5}
MT_ROUNDS=${BENCH_DDD_MT_ROUNDS:-3}
MT_STREAMS=${BENCH_DDD_MT_STREAMS:-100}
MT_CONNS=64
MT_PATH=/10240
HZ=$(getconf CLK_TCK)

# server_pid: the demo's pid ($spid is timeout(1)'s, whose one child is the demo).
server_pid() {
    p=$(pgrep -P "$spid" 2>/dev/null | head -n 1)
    [ -n "$p" ] || p=$(tr -s ' ' '\n' <"/proc/$spid/task/$spid/children" 2>/dev/null | head -n 1)
    echo "$p"
}

# ticks FILE: utime + stime (clock ticks) of the process or thread whose stat FILE is.
ticks() { sed 's/^.*) //' "$1" 2>/dev/null | awk '{ print $12 + $13 }'; }

# task_ticks PID: "TID TICKS" per live thread.
task_ticks() {
    for task in /proc/"$1"/task/*; do
        echo "${task##*/} $(ticks "$task/stat")"
    done
}

# (POSIX sh has no local variables: the helpers below use names of their own, none of
# serve's $i, nor scaling's $r, $t, $s.)
# mt_run KIND BIN: one server, a 1 s warm-up load, then the timed load; sets $res to a line of
# key=value: the client's summary fields, the server's CPU seconds over the timed load, its
# threads (counted halfway through), and the share of its CPU taken by its busiest thread;
# or fail=WHY. Not in a subshell: the EXIT trap must see $spid and $cpid.
mt_run() {
    kind=$1
    res="fail=start"
    [ "$kind" = single ] && export DEMO_THREADS=1
    serve "$2" "mt-scaling-$kind" || { unserve; unset DEMO_THREADS; return; }
    unset DEMO_THREADS
    res="fail=pid"
    pid=$(server_pid)
    [ -n "$pid" ] || { unserve; return; }
    client="$O/ddd-client-quic"
    args="--ca $CERTS/ca.pem -q -c $MT_CONNS -s $MT_STREAMS -p $MT_PATH 127.0.0.1 $port"
    # shellcheck disable=SC2086 # args is a list
    timeout 60 "$client" -d 1 $args >/dev/null 2>>"$L/mt-scaling-$kind.client"
    task_ticks "$pid" >"$L/mt-scaling-$kind.tasks0"
    c0=$(ticks "/proc/$pid/stat")
    # shellcheck disable=SC2086
    timeout $((MT_SECS + 60)) "$client" -d "$MT_SECS" $args >"$L/mt-scaling-$kind.sum" 2>>"$L/mt-scaling-$kind.client" &
    cpid=$!
    sleep "$(awk -v s="$MT_SECS" 'BEGIN { print s / 2 }')"
    threads=$(ls "/proc/$pid/task" 2>/dev/null | wc -l)
    wait "$cpid"
    rc=$?
    cpid=""
    c1=$(ticks "/proc/$pid/stat")
    task_ticks "$pid" >"$L/mt-scaling-$kind.tasks1"
    busiest=$(awk 'NR == FNR { t0[$1] = $2; next } { d = $2 - t0[$1]; if (d > m) m = d } END { print m + 0 }' \
        "$L/mt-scaling-$kind.tasks0" "$L/mt-scaling-$kind.tasks1")
    unserve
    sum=$(cat "$L/mt-scaling-$kind.sum")
    echo "mt-scaling $kind: $sum" >>"$L/results"
    res="fail=client_exit_${rc}_failed_$(field "$sum" failed)"
    [ "$rc" = 0 ] && [ -n "$sum" ] || return
    res=$(awk -v c0="$c0" -v c1="$c1" -v b="$busiest" -v hz="$HZ" -v th="$threads" -v s="$sum" 'BEGIN {
        n = split(s, f, " ")
        for (i = 1; i < n; i += 2) printf("%s=%s ", f[i], f[i + 1])
        printf("server_cpu=%.2f threads=%d busiest=%.2f\n", (c1 - c0) / hz, th, c1 > c0 ? b / (c1 - c0) : 0)
    }')
}

# kv LINE KEY: the value of KEY=... in a result line.
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s|^$2=||p"; }

# row LABEL THR SGL UNIT GOAL: one aligned line; GOAL like ">=0.95" or "<=1.10" or "".
row() {
    awk -v l="$1" -v t="$2" -v s="$3" -v u="$4" -v g="$5" -v tl="$6" -v sl="$7" 'BEGIN {
        ok = (t > 0 && s > 0)
        line = sprintf("%-16s %-20s %9.1f %-5s | %-20s %9.1f %-5s | ratio %s", "ddd mt quic", tl, t, u, sl, s, u,
                       ok ? sprintf("%6.3fx", t / s) : "    n/a")
        if (g != "") {
            lim = substr(g, 3) + 0
            met = ok && (substr(g, 1, 2) == ">=" ? t / s >= lim : t / s <= lim)
            line = line sprintf(" (goal %s %.2fx) %s", substr(g, 1, 2), lim, met ? "ok" : "MISSED")
        }
        print line
    }'
}

scaling() {
    tbin="$O/ddd-mt-quic" sbin="$O/ddd-async-pollable-quic"
    echo
    echo "== Threads, DDD demos over QUIC (issue 13): $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, $(nproc) cores,"
    echo "   load average $(cut -d' ' -f1-3 /proc/loadavg)."
    if [ ! -x "$tbin" ] || [ ! -x "$sbin" ]; then
        echo "   not run: $tbin or $sbin not built (see $L/build.log)"
        return
    fi
    echo "   threaded: ddd-mt-quic, blocking, one thread per connection (SSL_accept_stream, read, write),"
    echo "   accept threads blocked in SSL_accept_connection. single-thread: ddd-async-pollable-quic with"
    echo "   DEMO_THREADS=1, one libuv loop on the listener's poll descriptor, non-blocking."
    echo "   Load (the same for both, first port only): ddd-client-quic -c $MT_CONNS -s $MT_STREAMS -p $MT_PATH, another"
    echo "   process on the same cores: $MT_CONNS connections at a time, each asking up to $MT_STREAMS requests one after"
    echo "   another (a new bidi stream each, every byte checked), then a new connection (handshake"
    echo "   included, about 1 in $MT_STREAMS requests); no request starts after ${MT_SECS} s. 1 s of warm-up first."
    echo "   req/s and latency (request sent to answer read, p50/p99 over every request) from the client;"
    echo "   server CPU = utime + stime of the server process (/proc/PID/stat) over the timed load, per"
    echo "   request. $MT_ROUNDS rounds, the servers interleaved (the order alternating); best = the run with"
    echo "   the most req/s of each server, whose CPU/req and p99 the goals compare. ratio = threaded / single."
    thr="" sgl=""
    r=1
    while [ "$r" -le "$MT_ROUNDS" ]; do
        if [ $((r % 2)) = 1 ]; then
            mt_run threaded "$tbin"
            t=$res
            mt_run single "$sbin"
            s=$res
        else
            mt_run single "$sbin"
            s=$res
            mt_run threaded "$tbin"
            t=$res
        fi
        thr="$thr$t
"
        sgl="$sgl$s
"
        r=$((r + 1))
    done
    # best LINES: the line with the most req/s (none if every run failed).
    best() { printf '%s' "$1" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^req\/s=/) { v = substr($i, 7) + 0; if (v > m) { m = v; b = $0 } } } END { print b }'; }
    tbest=$(best "$thr")
    sbest=$(best "$sgl")
    r=1
    while [ "$r" -le "$MT_ROUNDS" ]; do
        t=$(printf '%s' "$thr" | sed -n "${r}p")
        s=$(printf '%s' "$sgl" | sed -n "${r}p")
        if [ -n "$(kv "$t" fail)$(kv "$s" fail)" ]; then
            echo "ddd mt quic      run $r: FAIL (threaded: $(kv "$t" fail), single: $(kv "$s" fail); see $L/mt-scaling-*.client)"
        else
            row "" "$(kv "$t" req/s)" "$(kv "$s" req/s)" "req/s" "" "threaded, run $r" "single, run $r"
        fi
        r=$((r + 1))
    done
    if [ -z "$tbest" ] || [ -z "$sbest" ]; then
        echo "ddd mt quic      no successful run of one of the servers: no goals"
        return
    fi
    cpr() { awk -v c="$(kv "$1" server_cpu)" -v n="$(kv "$1" requests)" 'BEGIN { if (n > 0) printf "%.2f", 1e6 * c / n; else print 0 }'; }
    row "" "$(kv "$tbest" req/s)" "$(kv "$sbest" req/s)" "req/s" ">=0.95" "threaded, best" "single, best"
    row "" "$(cpr "$tbest")" "$(cpr "$sbest")" "us" "<=1.10" "threaded CPU/req" "single CPU/req"
    row "" "$(kv "$tbest" p99_ms)" "$(kv "$sbest" p99_ms)" "ms" "<=1.50" "threaded p99" "single p99"
    detail() {
        awk -v l="$1" -v c="$(kv "$2" server_cpu)" -v n="$(kv "$2" requests)" -v w="$(kv "$2" seconds)" \
            -v th="$(kv "$2" threads)" -v b="$(kv "$2" busiest)" -v p50="$(kv "$2" p50_ms)" \
            -v p99="$(kv "$2" p99_ms)" -v conns="$(kv "$2" ok)" 'BEGIN {
            if (n + 0 == 0) exit
            printf("%-16s %-20s server %6.1f us/req (%4.2f cores, %3d thr, busiest thread %3.0f%%) | %6d req on %5d conns | p50 %6.2f ms, p99 %7.2f ms\n",
                   "  detail", l, 1e6 * c / n, c / w, th, 100 * b, n, conns, p50, p99)
        }'
    }
    r=1
    while [ "$r" -le "$MT_ROUNDS" ]; do
        detail "threaded, run $r" "$(printf '%s' "$thr" | sed -n "${r}p")"
        detail "single, run $r" "$(printf '%s' "$sgl" | sed -n "${r}p")"
        r=$((r + 1))
    done
    echo "   (thr = the server's threads halfway through the load; busiest thread = the largest share of the"
    echo "   server's CPU over the load taken by one thread alive at its end: about 100% means one thread"
    echo "   did the work. Client summaries: $L/results)"
}

: >"$L/results"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
[ -n "$models" ] && table
[ "$scaling" = 1 ] && scaling
exit 0
