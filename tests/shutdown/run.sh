#!/bin/sh
# Nothing lost on the way out (issue 14): a large write, then at once a graceful shutdown, must
# deliver every byte to every peer. The writer is ours (tests/shutdown/bulk.c against osslquic);
# the reader checks the length and the pattern of every byte and a clean end.
#   quic-get-PEER-MODE       our server answers "GET /N": N bytes on the client's stream,
#                            SSL_stream_conclude, SSL_shutdown_ex (MODE default: flags 0;
#                            rapid: SSL_SHUTDOWN_FLAG_RAPID), frees everything and exits.
#                            PEER: ours, ossl (bulk.c against OpenSSL 3.5), aioquic
#                            (tests/interop/hq_client.py), s_client (OpenSSL 3.5's
#                            `openssl s_client -quic`, its output compared by SHA-256)
#   quic-put-PEER-MODE       our client sends "PUT /N" and N bytes, concludes, shuts down the
#                            same way; PEER: ours, ossl, aioquic (tests/interop/hq_server.py)
#   tls-get-PEER-MODE        our TLS server writes N bytes, then close_notify (MODE bidi: waits
#                            for the peer's close_notify; oneway: closes the socket at once);
#                            PEER: ours, ossl, python (tests/tls/pypeer.py), s_client (the
#                            system's openssl)
#   tls-put-PEER             our TLS client writes N bytes, then close_notify and waits for the
#                            peer's; PEER: ours, ossl, python, s_server (the system's openssl)
#   relay-quic-{get,put}-PEER-MODE
#                            QUIC cases through tests/faults/relay.c: loss, reordering and
#                            duplication both ways (seeded), the reader closing itself after the
#                            FIN (the writer's one CONNECTION_CLOSE may be lost)
#   relay-blackhole-quic-*   the same through a 3 s blackhole at the end of the transfer
#   MODE (QUIC)              default, rapid, and each with -free (the writer frees the stream
#                            before SSL_shutdown_ex) or -nb (the writer is non-blocking);
#                            TLS: bidi, oneway, each with -nb; tls-put-PEER-nb; -slow: the
#                            reader (ours or ossl) stops reading for 3 s halfway, so the
#                            writer waits in its shutdown on flow control
#   selfcheck-*              the writer sends one byte less than it announces (bulk -T 1): the
#                            reader must notice, or the suite could not fail
# One PASS/FAIL line per case, the last line `N passed, N failed`; the figures go to
# build/reliability/shutdown.txt. Every process has a time limit (`timeout`, bulk -t, --lifetime),
# every wait polls with a bound, every address is 127.0.0.1. Logs:
# build/shutdown/<case>.{server,client,relay}.
#   run.sh                   every case
#   run.sh 't_quic get ours rapid' ...   only those given
set -u
cd "$(dirname "$0")/../.."
: "${BUILD:=build}" "${CC:=cc}" "${LIB_REL:=target/release/libosslquic.a}" "${OSSL_PREFIX:=/opt/openssl-3.5}"
: "${LDLIBS:=-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}"
# Bytes per run (16 MiB and an odd tail), and per run under the relay.
: "${SHUTDOWN_BYTES:=16777223}" "${SHUTDOWN_RELAY_BYTES:=8388617}"
L="$BUILD/shutdown"
PY="$BUILD/venv/bin/python"
CERTS="$BUILD/certs"
OSSL="$OSSL_PREFIX/bin/openssl"
# Loss, reordering and duplication both ways under the relay; or a 3 s blackhole both ways
# from datagram 6,000 (an 8 MiB transfer takes 6,300 to 7,900 both ways): the end of the
# transfer, the flush and the close happen in it or just after.
IMPAIR="drop=0.03,reorder=0.05,gap=3,hold=10,dup=0.02"
BLACKHOLE="bh_at=6000,bh_for=3"
export OSSLQUIC_CERTS="$CERTS" # tests/tls/pypeer.py
. tests/lib.sh
mkdir -p "$L" "$BUILD/reliability"
passed=0
failed=0
known=0
runs=0
relayed=0
verified=0
peers=""

cflags="-O2 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE"
# shellcheck disable=SC2086
if ! cargo build --release --quiet >"$L/build.log" 2>&1 ||
    ! $CC $cflags -Iinclude tests/shutdown/bulk.c "$LIB_REL" $LDLIBS -o "$L/bulk-ours" >>"$L/build.log" 2>&1 ||
    ! $CC $cflags tests/faults/relay.c -o "$L/relay" >>"$L/build.log" 2>&1; then
    cat "$L/build.log"
    echo "shutdown: building the library, tests/shutdown/bulk.c or the relay failed"
    echo "0 passed, 1 failed"
    exit 1
fi
# The OpenSSL 3.5 twin. tests/openssl/fetch.sh installs OpenSSL 3.5 (once; minutes).
rm -f "$L/bulk-ossl"
[ -f "$OSSL_PREFIX/include/openssl/quic.h" ] ||
    bash tests/openssl/fetch.sh "$OSSL_PREFIX" "${OSSL_WORK:-/var/tmp/openssl-3.5-src}" >"$L/fetch.log" 2>&1
# shellcheck disable=SC2086
[ -f "$OSSL_PREFIX/include/openssl/quic.h" ] &&
    $CC $cflags -I"$OSSL_PREFIX/include" tests/shutdown/bulk.c -L"$OSSL_PREFIX/lib" \
        -Wl,-rpath,"$OSSL_PREFIX/lib" -lssl -lcrypto -o "$L/bulk-ossl" >>"$L/build.log" 2>&1
[ -f "$CERTS/ca.pem" ] || cargo run --release --quiet --example gencert -- "$CERTS" >/dev/null 2>&1

result() { # result NAME OK WHY
    if [ "$2" = 1 ]; then
        passed=$((passed + 1))
        echo "PASS $1: $3"
    else
        failed=$((failed + 1))
        echo "FAIL $1: $3"
        for f in "$L/$1.client" "$L/$1.server" "$L/$1.relay"; do
            [ -s "$f" ] && { echo "  --- $f (last lines)"; tail -n 8 "$f" | sed 's/^/    /'; }
        done
    fi
}

# known_fail NAME WHY: a failure whose cause is known and written down in WHY (and in
# docs/ARCHITECTURE.md): its own line, counted apart, not failing the suite.
known_fail() {
    known=$((known + 1))
    echo "KNOWN-FAIL $1: $2"
}

# peer NAME: a peer this run exercised (for the figures).
peer() { case " $peers " in *" $1 "*) ;; *) peers="$peers $1" ;; esac; }

# missing PEER: why PEER cannot run here, or nothing.
missing() {
    case $1 in
    ossl) [ -x "$L/bulk-ossl" ] || echo "OpenSSL 3.5 is not installed in $OSSL_PREFIX (tests/openssl/fetch.sh)" ;;
    s_client-quic) [ -x "$OSSL" ] || echo "OpenSSL 3.5 is not installed in $OSSL_PREFIX (tests/openssl/fetch.sh)" ;;
    aioquic) "$PY" -c 'import aioquic' >/dev/null 2>&1 || echo "aioquic is not installed in $BUILD/venv (tests/setup.sh)" ;;
    s_client | s_server) command -v openssl >/dev/null || echo "no openssl command (tests/setup.sh)" ;;
    python) command -v python3 >/dev/null || echo "no python3" ;;
    esac
}

# serve CMD...: starts a server whose stdout says "listening on PORT" (stdout and stderr in
# $L/$name.server); sets $spid and $port. CMD bounds its own life (bulk -t, --lifetime).
serve() {
    : >"$L/$name.server" # now: the redirection below happens in the child, later
    "$@" >"$L/$name.server" 2>&1 &
    spid=$!
    pids="$pids $spid"
    port=$(wait_listen "$L/$name.server" "$spid")
}

# front SEED SPEC: the relay between the client and the server on $port, with SPEC both ways;
# sets $rpid and $port (the relay's).
front() {
    : >"$L/$name.relay" # now: the redirection below happens in the child, later
    "$L/relay" -T 150 -s "$1" --both "$2" "$port" >"$L/$name.relay" 2>&1 &
    rpid=$!
    pids="$pids $rpid"
    port=$(wait_listen "$L/$name.relay" "$rpid")
}

# relay_faults FIELD...: nothing if the relay did that to datagrams both ways (dropped,
# reordered, blackholed); else says what it did not do.
relay_faults() {
    for d in c2s s2c; do
        for f in "$@"; do
            c=$(sed -n "s/^relay: $d: .* $f \\([0-9][0-9]*\\).*/\\1/p" "$L/$name.relay" | head -1)
            [ "${c:-0}" -gt 0 ] || echo "the relay $f no datagram $d; "
        done
    done
}

# has FILE REGEX: FILE has a line matching REGEX.
has() { grep -q "$2" "$1" 2>/dev/null; }

# verdict N CLIENT_RC SERVER_RC CLIENT_WANT SERVER_WANT [WHY]: the common end of a case: both
# exited 0 and printed what they must; PASS counts N bytes verified.
verdict() {
    n=$1 crc=$2 src=$3 cw=$4 sw=$5 why=${6:-}
    [ "$crc" = 0 ] || why="$why client exit status $crc;"
    [ "$src" = 0 ] || why="$why server exit status $src;"
    has "$L/$name.client" "$cw" || why="$why the client did not report '$cw';"
    has "$L/$name.server" "$sw" || why="$why the server did not report '$sw';"
    runs=$((runs + 1))
    [ -n "${rpid:-}" ] && relayed=$((relayed + 1))
    if [ -z "$why" ]; then
        verified=$((verified + n))
        result "$name" 1 "$n bytes verified, $(since "$t0") s$note"
    else
        result "$name" 0 "${why% ;}"
    fi
}

# mode_flags MODE: bulk's options for the writer ($wflag) and the reader ($dflag) that MODE
# names: rapid* -R, oneway* -1, *-free -f, *nb -n (and $nbs, the writer's note), *-slow
# (reader) -d 3000. Also starts a case afresh: no relay, no note, an empty client log.
mode_flags() {
    wflag="" dflag="" nbs="" rpid="" note=""
    case $1 in rapid*) wflag=-R ;; oneway*) wflag=-1 ;; esac
    case $1 in *-free) wflag="$wflag -f" ;; *nb) wflag="$wflag -n" nbs=" (non-blocking)" ;; esac
    case $1 in *-slow) dflag="-d 3000" ;; esac
    : >"$L/$name.client"
}

# ---- QUIC

# t_quic get|put PEER MODE [SEED [blackhole]]: MODE default, rapid (SSL_SHUTDOWN_FLAG_RAPID),
# default-free, rapid-free (the writer frees the stream before SSL_shutdown_ex), default-nb,
# rapid-nb (the writer is non-blocking: bulk -n); with SEED, through the relay ($IMPAIR, or
# $BLACKHOLE).
t_quic() {
    op=$1 pr=$2 mode=$3 seed=${4:-} bh=${5:-}
    name=${seed:+relay-}${bh:+blackhole-}quic-$op-$pr-$mode
    n=$SHUTDOWN_BYTES
    [ -n "$seed" ] && n=$SHUTDOWN_RELAY_BYTES
    miss=$(missing "$pr")
    [ -z "$miss" ] || { result "$name" 0 "$miss"; return; }
    peer "$pr"
    mode_flags "$mode"
    [ -n "$seed" ] && dflag="$dflag -c"
    if [ "$op" = get ]; then
        serve "$L/bulk-ours" quic server $wflag -t 100 0 "$CERTS/chain.pem" "$CERTS/key.pem"
    elif [ "$pr" = aioquic ]; then
        serve "$PY" tests/interop/hq_server.py --cert "$CERTS/chain.pem" --key "$CERTS/key.pem" --lifetime 110
    else
        serve "$L/bulk-$pr" quic server $dflag -t 100 0 "$CERTS/chain.pem" "$CERTS/key.pem"
    fi
    [ -n "$port" ] || { result "$name" 0 "the server did not start"; return; }
    if [ -n "$seed" ]; then
        front "$seed" "$([ -n "$bh" ] && echo "$BLACKHOLE" || echo "$IMPAIR")"
        [ -n "$port" ] || { result "$name" 0 "the relay did not start"; return; }
    fi
    t0=$(now)
    sw="^sent $n bytes, concluded,$(case $mode in *-free) echo ' freed,' ;; esac) SSL_shutdown_ex($(case $mode in rapid*) echo RAPID ;; *) echo 0 ;; esac)) returned [01]$nbs\$"
    cw="^received $n bytes (pattern), FIN, then "
    if [ "$op" = put ]; then
        timeout 100 "$L/bulk-ours" quic client $wflag -t 90 -C "$CERTS/ca.pem" localhost "$port" put "$n" \
            >"$L/$name.client" 2>&1
        crc=$?
        cw=$sw
        sw="^received $n bytes (pattern), FIN, then "
        if [ "$pr" = aioquic ]; then
            sw="^conn 1: stream 0: PUT /$n: $n bytes (pattern), FIN\$"
            # The upload is complete once it says so (bounded), then it is stopped.
            i=0
            while ! has "$L/$name.server" "$sw" && [ $i -lt 100 ]; do
                sleep 0.1
                i=$((i + 1))
            done
            stop "$spid" >/dev/null
            src=$?
        else
            wait_exit "$spid" 30
            src=$?
        fi
    else
        case $pr in
        ours | ossl)
            timeout 100 "$L/bulk-$pr" quic client $dflag -t 90 -C "$CERTS/ca.pem" localhost "$port" get "$n" \
                >"$L/$name.client" 2>&1
            crc=$?
            ;;
        aioquic)
            timeout 100 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 90 127.0.0.1 "$port" "/$n" \
                >"$L/$name.client" 2>&1
            crc=$?
            cw="requests ok, .* $n bytes in"
            ;;
        s_client-quic)
            printf 'GET /%d\r\n' "$n" | timeout 100 "$OSSL" s_client -quic -alpn hq-interop -connect "127.0.0.1:$port" \
                -CAfile "$CERTS/ca.pem" -verify_return_error -quiet >"$L/$name.got" 2>"$L/$name.client"
            crc=$?
            same "$L/$name.got" quic "$n" >>"$L/$name.client"
            cw="^received $n bytes, as sent\$"
            ;;
        esac
        wait_exit "$spid" 30
        src=$?
    fi
    why=""
    if [ -n "$seed" ]; then
        stop "$rpid" >/dev/null || why="the relay did not stop; "
        why="$why$(if [ -n "$bh" ]; then relay_faults blackholed; else relay_faults dropped reordered; fi)"
        note=", seed $seed: $(relay_summary "$L/$name.relay")"
    fi
    verdict "$n" "$crc" "$src" "$cw" "$sw" "$why"
}

# same FILE quic|tls N: whether FILE holds the N-byte pattern, as one line.
same() {
    a=$("$L/bulk-ours" gen "$2" "$3" | sha256sum | cut -d' ' -f1)
    b=$(sha256sum <"$1" | cut -d' ' -f1)
    if [ "$a" = "$b" ]; then
        echo "received $3 bytes, as sent"
    else
        echo "received $(wc -c <"$1") bytes, SHA-256 $b, expected $3 bytes, SHA-256 $a"
    fi
}

# ---- TLS over TCP

# t_tls get PEER bidi|oneway|bidi-nb|oneway-nb; t_tls put PEER [nb] (nb: the writer is
# non-blocking, bulk -n)
t_tls() {
    op=$1 pr=$2 mode=${3:-bidi}
    name=tls-$op-$pr${3:+-$3}
    n=$SHUTDOWN_BYTES
    miss=$(missing "$pr")
    [ -z "$miss" ] || { result "$name" 0 "$miss"; return; }
    peer "$pr"
    mode_flags "$mode"
    if [ "$op" = get ]; then
        serve "$L/bulk-ours" tls server $wflag -t 100 0 "$CERTS/chain.pem" "$CERTS/key.pem"
        [ -n "$port" ] || { result "$name" 0 "the server did not start"; return; }
        t0=$(now)
        sw="^sent $n bytes, close_notify "
        case $pr in
        ours | ossl)
            timeout 100 "$L/bulk-$pr" tls client $dflag -t 90 -C "$CERTS/ca.pem" localhost "$port" get "$n" >"$L/$name.client" 2>&1
            crc=$?
            cw="^received $n bytes (pattern), close_notify, "
            ;;
        python)
            timeout 100 python3 tests/tls/pypeer.py client "$port" "$n" >"$L/$name.client" 2>&1
            crc=$?
            cw="^OK TLSv1.3 alpn=- bytes=$n\$"
            ;;
        s_client)
            printf 'GET /%d\r\n' "$n" | timeout 100 openssl s_client -connect "127.0.0.1:$port" -CAfile "$CERTS/ca.pem" \
                -verify_return_error -quiet >"$L/$name.got" 2>"$L/$name.client"
            crc=$?
            same "$L/$name.got" tls "$n" >>"$L/$name.client"
            cw="^received $n bytes, as sent\$"
            ;;
        esac
        wait_exit "$spid" 30
        src=$?
    else
        case $pr in
        ours | ossl)
            serve "$L/bulk-$pr" tls server -t 100 0 "$CERTS/chain.pem" "$CERTS/key.pem"
            sw="^received $n bytes (pattern), close_notify, "
            ;;
        python)
            rm -f "$L/$name.port"
            timeout 120 python3 tests/tls/pypeer.py sink "$L/$name.port" >"$L/$name.server" 2>&1 &
            spid=$!
            pids="$pids $spid"
            port=$(wait_file "$L/$name.port" "$spid")
            sw="^received $n bytes (pattern), close_notify\$"
            ;;
        s_server)
            # s_server cannot report a port it did not choose (and -quiet, which keeps its
            # output to the data received, hides its ACCEPT line): a free port, then a
            # listening socket on it.
            port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
            # Its stdin stays open (a FIFO held by descriptor 3) and silent: at EOF a quiet
            # s_server would spin on it.
            rm -f "$L/$name.stdin"
            mkfifo "$L/$name.stdin"
            timeout 120 openssl s_server -accept "127.0.0.1:$port" -cert "$CERTS/chain.pem" -key "$CERTS/key.pem" \
                -quiet -naccept 1 >"$L/$name.got" 2>"$L/$name.server" <"$L/$name.stdin" &
            spid=$!
            pids="$pids $spid"
            exec 3>"$L/$name.stdin"
            i=0
            while ! ss -tlnH "sport = :$port" | grep -q . && alive "$spid" && [ $i -lt 150 ]; do
                sleep 0.1
                i=$((i + 1))
            done
            ss -tlnH "sport = :$port" | grep -q . || port=""
            sw="^received $n bytes, as sent\$"
            ;;
        esac
        [ -n "$port" ] || { result "$name" 0 "the server did not start"; return; }
        t0=$(now)
        timeout 100 "$L/bulk-ours" tls client $wflag -t 90 -C "$CERTS/ca.pem" localhost "$port" put "$n" >"$L/$name.client" 2>&1
        crc=$?
        cw="^sent $n bytes, close_notify both ways$nbs\$"
        wait_exit "$spid" 30
        src=$?
        if [ "$pr" = s_server ]; then
            exec 3>&-
            # What s_server printed is the request line and the body.
            tail -c +$(($(printf 'PUT /%d\r\n' "$n" | wc -c) + 1)) "$L/$name.got" >"$L/$name.body"
            same "$L/$name.body" tls "$n" >>"$L/$name.server"
        fi
    fi
    verdict "$n" "$crc" "$src" "$cw" "$sw"
}

# wait_file FILE PID: the port PID wrote to FILE (bounded: ~15 s).
wait_file() {
    i=0
    while [ ! -s "$1" ] && alive "$2" && [ $i -lt 150 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    cat "$1" 2>/dev/null
}

# ---- self-checks: a writer one byte short must make the reader fail

# t_selfcheck quic|tls PEER: our server sends N-1 bytes for "GET /N"; PASS if the reader fails.
t_selfcheck() {
    name=selfcheck-$1-$2
    n=1000003
    miss=$(missing "$2")
    [ -z "$miss" ] || { result "$name" 0 "$miss"; return; }
    serve "$L/bulk-ours" "$1" server -T 1 -t 60 0 "$CERTS/chain.pem" "$CERTS/key.pem"
    [ -n "$port" ] || { result "$name" 0 "the server did not start"; return; }
    case $2 in
    ours) timeout 60 "$L/bulk-ours" "$1" client -t 50 -C "$CERTS/ca.pem" localhost "$port" get "$n" >"$L/$name.client" 2>&1 ;;
    aioquic) timeout 60 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 50 127.0.0.1 "$port" "/$n" >"$L/$name.client" 2>&1 ;;
    python) timeout 60 python3 tests/tls/pypeer.py client "$port" "$n" >"$L/$name.client" 2>&1 ;;
    esac
    crc=$?
    wait_exit "$spid" 30 >/dev/null
    if [ "$crc" != 0 ] && has "$L/$name.server" "^sent $((n - 1)) bytes"; then
        result "$name" 1 "the reader saw the missing byte: $(grep -m1 -E 'FAILED|failed|expected' "$L/$name.client" | cut -c 1-100)"
    else
        result "$name" 0 "the reader did not notice a missing byte (exit status $crc)"
    fi
}

all() {
    for m in default rapid; do
        for p in ours ossl aioquic s_client-quic; do t_quic get $p $m; done
        for p in ours ossl aioquic; do t_quic put $p $m; done
    done
    for m in default-free rapid-free; do
        for p in ours aioquic; do
            t_quic get $p $m
            t_quic put $p $m
        done
    done
    for m in bidi oneway; do
        for p in ours ossl python s_client; do t_tls get $p $m; done
    done
    for p in ours ossl python s_server; do t_tls put $p; done
    for m in default-nb rapid-nb; do
        for p in ours ossl aioquic; do
            t_quic get $p $m
            t_quic put $p $m
        done
    done
    for m in bidi-nb oneway-nb; do
        for p in ours ossl python s_client; do t_tls get $p $m; done
    done
    for p in ours ossl python s_server; do t_tls put $p nb; done
    t_quic get ours default-slow
    t_quic get ossl rapid-slow
    t_quic put ours rapid-slow
    t_tls get ours bidi-slow
    t_quic get ours default 501
    t_quic get ours rapid 502
    t_quic get aioquic default 503
    t_quic get aioquic rapid 504
    t_quic put ours default 505
    t_quic put ours rapid 506
    t_quic put aioquic default 507
    t_quic put aioquic rapid 508
    t_quic get ours rapid-free 509
    t_quic put ours default-free 510
    t_quic get ours default-nb 511
    t_quic put ours rapid-nb 512
    t_quic get aioquic rapid-nb 513
    t_quic get ours default 521 blackhole
    t_quic get ours rapid-nb 522 blackhole
    t_quic put ours rapid 523 blackhole
    t_quic get aioquic default 524 blackhole
    t_selfcheck quic ours
    t_selfcheck quic aioquic
    t_selfcheck tls ours
    t_selfcheck tls python
}

if [ $# = 0 ]; then
    all
else
    for c in "$@"; do eval "$c"; done
fi

echo "shutdown: $runs runs ($(echo "$peers" | wc -w) peers, $relayed under the relay), $((verified / 1048576)) MiB verified, $failed failed, $known known failures" \
    >"$BUILD/reliability/shutdown.txt"
cat "$BUILD/reliability/shutdown.txt"
[ $known = 0 ] || echo "$known known failures (see above)"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
