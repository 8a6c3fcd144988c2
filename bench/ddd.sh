#!/bin/sh
# `make bench`, DDD demos part: each concurrency model's QUIC build next to its TLS build,
# loaded by ddd-client with 32 concurrent clients on loopback.
#   small: as many connections as fit in BENCH_DDD_SECS seconds (default 3), each fetching
#          /100 (one request; QUIC: one stream): connections per second
#   bulk:  32 connections at once, each fetching /10000000: MB/s of answer bytes
# Models: mt, fork, prefork (4 workers), and async-pollable, async-nonpollable,
# async-unaddressed when their binaries build. TLS = the plain TLS-over-TCP build (accept(2)).
# Every byte is checked by the client; a run with a failed connection shows "FAIL".
# Every server is stopped here; every command is bounded by `timeout`.
#   BENCH_DDD_SECS  seconds of the small-fetch load per cell (default 3)
#   BENCH_DDD_ONLY  space-separated models to run (default: all that exist)
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

spid=""
cleanup() { [ -n "$spid" ] && kill -TERM "$spid" 2>/dev/null; }
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

models=${BENCH_DDD_ONLY:-"mt fork prefork async-pollable async-nonpollable async-unaddressed"}
: >"$L/results"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
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
