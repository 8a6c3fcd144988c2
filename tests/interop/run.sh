#!/bin/sh
# Interop tests against real QUIC peers on 127.0.0.1, ending with `N passed, N failed`.
#   our quic-server  <- aioquic client (tests/interop/hq_client.py): 10 MB on one stream,
#                       50 streams at once, 200 requests 10 at a time, 8 connections at once
#   our quic-client  -> aioquic server (tests/interop/hq_server.py): 10 MB, 50 streams
#   zerortt both ways with aioquic (it resumes with 0-RTT; our client writes early data), and
#                       ngtcp2's client sending its h3 request in 0-RTT
#   our quic-server  <- ngtcp2's client (Debian's gtlsclient, h3 only): handshake completed and
#                       request stream received, as the server's log shows
#   ecn: our quic-server <- ngtcp2's client: ECN counts in the ACKs both ways (ngtcp2 validates
#                       ECN from our ACK_ECN counts, its qlog shows them; our server reads
#                       ngtcp2's ECT(0) marks and keeps marking after ngtcp2's ACKs); and <-
#                       aioquic's client, which has no ECN: our server stops marking, the
#                       transfer is whole
#   rebind-port / rebind-addr: through a rebinding relay (tests/interop/rebind.py), both ways
#                       with aioquic
# Needs what tests/setup.sh installs (build/venv with aioquic, ngtcp2-client). Every port is
# chosen by the system, every wait is bounded, every process started here is stopped here.
# Logs: build/interop/<test>.{log,out,client}.
set -u
cd "$(dirname "$0")/../.."
: "${BUILD:=build}"
D="$BUILD/demos"
L="$BUILD/interop"
PY="$BUILD/venv/bin/python"
CERTS="$BUILD/certs"
mkdir -p "$L"
. tests/lib.sh

: >"$L/build.log"
built interop sh c-demos/run-demo.sh --build-only
stream_api=$(cat "$D/stream-api")
[ "$stream_api" = 1 ] || echo "interop: note: the library has no stream API yet (SSL_new_stream/SSL_accept_stream): the multi-stream tests are expected to fail"
need_certs

# start NAME CMD...: starts a server (stdout NAME.out, stderr NAME.log), waits up to ~15 s for
# "listening on PORT"; sets $port and $spid.
start() {
    name=$1
    shift
    : >"$L/$name.out"
    "$@" >"$L/$name.out" 2>"$L/$name.log" &
    spid=$!
    pids="$pids $spid"
    port=$(wait_listen "$L/$name.out" "$spid") && return 0
    echo "  server did not start:" && sed 's/^/    /' "$L/$name.log"
    return 1
}

# stop_server: `stop` for the server `start` started; 0 if it exited cleanly with status 0.
stop_server() {
    stop "$spid"
    rc=$?
    [ "$rc" = 0 ] || echo "  server exited with status $rc"
    return "$rc"
}

# The logs shown under a FAIL line.
result_logs() { echo "$L/$1.client $L/$1.log"; }

need_py() {
    "$PY" -c 'import aioquic' >/dev/null 2>&1 && return 0
    echo "  aioquic is not installed in $BUILD/venv (run tests/setup.sh)"
    return 1
}

no_streams_note() {
    [ "$stream_api" = 1 ] || echo "expected while the library has no stream API"
}

our_server() { # our_server NAME [server options]: our quic-server on an ephemeral port
    name=$1
    shift
    start "$name" "$D/quic-server" --idle-exit 60 "$@" "$CERTS/chain.pem" "$CERTS/key.pem" 0
}

# ---- (a) our server, aioquic client

t_aioquic_client_10mb() {
    n=aioquic-client-10MB
    need_py && our_server $n || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 60 127.0.0.1 "$port" /10000000 \
        >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    grep -q "GET /10000000 -> 10000000/10000000 bytes (pattern), done" "$L/$n.log" || ok=0
    [ $ok = 1 ] && tail -n 1 "$L/$n.client" | sed 's/^/  /'
    result $n $ok
}

t_aioquic_client_50_streams() {
    n=aioquic-client-50-streams
    need_py && our_server $n || { result $n 0 "setup"; return; }
    ok=1
    limit=60
    [ "$stream_api" = 1 ] || limit=10
    # 50 streams opened at once: 10 x (empty, 1 byte, 1000, 100000 bytes, a text page).
    timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout $limit --repeat 10 \
        127.0.0.1 "$port" /0 /1 /1000 /100000 /hello >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    [ "$(grep -c 'stream [0-9]*: GET .*, done' "$L/$n.log")" = 50 ] || ok=0
    [ $ok = 1 ] && tail -n 1 "$L/$n.client" | sed 's/^/  /'
    result $n $ok "$(no_streams_note)"
}

t_aioquic_client_refill() {
    n=aioquic-client-200-requests-10-at-a-time
    need_py && our_server $n || { result $n 0 "setup"; return; }
    ok=1
    limit=60
    [ "$stream_api" = 1 ] || limit=10
    # A new stream as soon as one finishes: streams opened while others complete.
    timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout $limit --repeat 100 --parallel 10 \
        127.0.0.1 "$port" /1000 /5000 >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    [ "$(grep -c 'stream [0-9]*: GET .*, done' "$L/$n.log")" = 200 ] || ok=0
    [ $ok = 1 ] && tail -n 1 "$L/$n.client" | sed 's/^/  /'
    result $n $ok "$(no_streams_note)"
}

t_aioquic_client_connections() {
    n=aioquic-client-8-connections
    need_py && our_server $n --no-retry || { result $n 0 "setup"; return; }
    ok=1
    cpids=""
    k=0
    while [ $k -lt 8 ]; do
        timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 60 127.0.0.1 "$port" /300000 \
            >"$L/$n.client.$k" 2>&1 &
        cpids="$cpids $!"
        k=$((k + 1))
    done
    for p in $cpids; do wait "$p" || ok=0; done
    cat "$L/$n.client".* >"$L/$n.client"
    rm -f "$L/$n.client".*
    stop_server || ok=0
    [ "$(grep -c 'handshake done' "$L/$n.log")" = 8 ] || ok=0
    [ "$(grep -c 'GET /300000 -> 300000/300000 bytes (pattern), done' "$L/$n.log")" = 8 ] || ok=0
    [ $ok = 1 ] && echo "  8 connections at once, 300000 bytes each, no Retry"
    result $n $ok
}

# The interop runner's keyupdate case, aioquic updating: it logs its key phase change, then
# fetches 1 MB from our server, which must follow to read it.
t_aioquic_client_keyupdate() {
    n=aioquic-client-keyupdate
    need_py && our_server $n || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 60 --key-update 127.0.0.1 \
        "$port" /1000000 >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    grep -q "GET /1000000 -> 1000000/1000000 bytes (pattern), done" "$L/$n.log" || ok=0
    grep -q "key updated: .* (local_update)" "$L/$n.client" || ok=0
    [ $ok = 1 ] && echo "  aioquic: $(grep -m1 'key updated' "$L/$n.client"); $(tail -n 1 "$L/$n.client")"
    result $n $ok
}

# RFC 9221 datagrams, aioquic sending: our server (--datagram-echo) returns every one.
t_aioquic_client_datagrams() {
    n=aioquic-client-datagrams
    need_py && our_server $n --datagram-echo || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 30 --datagrams 200 127.0.0.1 \
        "$port" /1000 >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    grep -q "200 datagrams sent, all came back intact" "$L/$n.client" || ok=0
    grep -q "200 datagrams echoed" "$L/$n.log" || ok=0
    [ $ok = 1 ] && echo "  $(grep -m1 'datagrams sent' "$L/$n.client"); ours: $(grep -o '[0-9]* datagrams echoed' "$L/$n.log")"
    result $n $ok
}

# The interop runner's zerortt case, aioquic resuming: it fetches the paths, keeps the
# session ticket, then sends the same requests in 0-RTT on a second connection; our server
# (SSL_CTX_set_max_early_data) accepts the early data. Without Retry, as the runner's zerortt
# case: aioquic 1.3 forgets 0-RTT data sent before a Retry (its _connect makes new packet
# spaces), so behind a Retry its requests are never sent again.
t_aioquic_client_zerortt() {
    n=aioquic-client-zerortt
    need_py && our_server $n --early-data --no-retry || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 30 --zero-rtt 127.0.0.1 "$port" \
        /1000 /100000 >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    grep -q "0-RTT keys True, resumed True, early data accepted True" "$L/$n.client" || ok=0
    grep -q "^conn 1: handshake done .*, full, no early data" "$L/$n.log" || ok=0
    grep -q "^conn 2: handshake done .*, resumed, early data accepted" "$L/$n.log" || ok=0
    [ "$(grep -c '^conn 2 stream [0-9]*: GET .*, done' "$L/$n.log")" = 2 ] || ok=0
    [ $ok = 1 ] && echo "  $(tail -n 1 "$L/$n.client"); ours: $(grep -m1 '^conn 2: handshake done' "$L/$n.log")"
    result $n $ok
}

# ---- (b) our client, aioquic server

aioquic_server() { # aioquic_server NAME [hq_server.py options]
    n=$1
    shift
    need_py && start "$n" "$PY" tests/interop/hq_server.py --cert "$CERTS/chain.pem" --key "$CERTS/key.pem" \
        --retry --lifetime 120 "$@"
}

# The keyupdate case, our client updating (SSL_key_update): aioquic sees the peer's new key
# phase and answers under it.
t_aioquic_server_keyupdate() {
    n=aioquic-server-keyupdate
    aioquic_server $n --log-key-updates || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$D/quic-client" -c "$CERTS/ca.pem" -s localhost -t 60 -u 127.0.0.1 "$port" /1000000 \
        >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    grep -q "key updated: .* (remote_update)" "$L/$n.log" || ok=0
    [ $ok = 1 ] && echo "  aioquic: $(grep -m1 'key updated' "$L/$n.log"); $(tail -n 1 "$L/$n.client")"
    result $n $ok
}

t_aioquic_server_10mb() {
    n=aioquic-server-10MB
    aioquic_server $n || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$D/quic-client" -c "$CERTS/ca.pem" -s localhost -t 60 127.0.0.1 "$port" /10000000 \
        >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    [ $ok = 1 ] && tail -n 1 "$L/$n.client" | sed 's/^/  /'
    result $n $ok
}

t_aioquic_server_50_streams() {
    n=aioquic-server-50-streams
    aioquic_server $n || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$D/quic-client" -c "$CERTS/ca.pem" -s localhost -t 60 -n 10 127.0.0.1 "$port" \
        /0 /1 /1000 /100000 /hello >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    [ $ok = 1 ] && tail -n 1 "$L/$n.client" | sed 's/^/  /'
    result $n $ok "$(no_streams_note)"
}

# The connectionmigration case: our client answers its first request on 127.0.0.1, then moves
# to a socket on 127.0.0.2 (SSL_set_fd, active migration): aioquic validates the new path
# and answers the second request there, to a new connection ID.
t_aioquic_server_migration() {
    n=aioquic-server-migration
    aioquic_server $n --log-paths || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$D/quic-client" -c "$CERTS/ca.pem" -s localhost -t 60 -p 1 -m 127.0.0.2 127.0.0.1 "$port" \
        /300000 /300000 >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    first=$(grep -m1 -o 'GET /300000 -> 300000 bytes (peer [^)]*)' "$L/$n.log")
    second=$(grep -o 'GET /300000 -> 300000 bytes (peer [^)]*)' "$L/$n.log" | sed -n 2p)
    case "$first" in *"peer 127.0.0.1:"*) ;; *) ok=0 ;; esac
    case "$second" in *"peer 127.0.0.2:"*) ;; *) ok=0 ;; esac
    [ "${first##*cid }" != "${second##*cid }" ] || ok=0
    [ $ok = 1 ] && echo "  aioquic: $first; then $second"
    result $n $ok
}

# Datagrams, ours sending: aioquic echoes each (and counts them), our client checks them all.
t_aioquic_server_datagrams() {
    n=aioquic-server-datagrams
    aioquic_server $n --datagram-echo || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$D/quic-client" -c "$CERTS/ca.pem" -s localhost -t 60 -d 200 127.0.0.1 "$port" /1000 \
        >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    grep -q "200 datagrams sent, all came back intact" "$L/$n.client" || ok=0
    grep -q "200 datagrams echoed" "$L/$n.log" || ok=0
    [ $ok = 1 ] && echo "  $(grep -m1 'datagrams sent' "$L/$n.client"); aioquic: $(grep -o '[0-9]* datagrams echoed' "$L/$n.log")"
    result $n $ok
}

# The zerortt case, our client resuming (SSL_set_session, SSL_write_early_data): aioquic
# (behind its Retry) answers the second connection's requests before its handshake is done,
# which only 0-RTT data allows.
t_aioquic_server_zerortt() {
    n=aioquic-server-zerortt
    aioquic_server $n --zero-rtt || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$D/quic-client" -c "$CERTS/ca.pem" -s localhost -t 60 -z 127.0.0.1 "$port" /1000 /200000 \
        >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    grep -q "resumed yes, early data accepted (2 requests" "$L/$n.client" || ok=0
    grep -q "^conn 2: handshake done, .*resumed True, early data accepted True" "$L/$n.log" || ok=0
    # Both answers went out before aioquic's handshake completed.
    [ "$(sed -n '/^conn 2: /p' "$L/$n.log" | sed -n '1,2p' | grep -c 'stream [0-9]*: GET')" = 2 ] || ok=0
    [ $ok = 1 ] && echo "  $(grep -m1 'early data' "$L/$n.client"); aioquic: $(grep -m1 '^conn 2: handshake done' "$L/$n.log"), after both answers"
    result $n $ok
}

# ---- NAT rebinding, both ways (the interop runner's rebind-port and rebind-addr): a relay
# between client and server (tests/interop/rebind.py) plays a NAT that, halfway through a 5 MB
# download, starts sending the client's datagrams from a new port (rebind-port) or a new
# address, 127.0.0.2 (rebind-addr), and drops what the server still sends to the old one. The
# client knows nothing of it. The server must follow to the new address (its log says so, and
# it must be the relay's new socket), the relay must have carried answers on the new path, and
# every byte must arrive.

REBIND_N=5000000
REBIND_AFTER=2000000

# rebind_relay NAME MODE SERVER_PORT: starts the relay (output NAME.relay) in front of the
# server on 127.0.0.1:SERVER_PORT; sets $rport and $rpid.
rebind_relay() {
    : >"$L/$1.relay"
    "$PY" tests/interop/rebind.py --server "127.0.0.1:$3" --mode "$2" --after-bytes $REBIND_AFTER \
        --lifetime 100 >"$L/$1.relay" 2>&1 &
    rpid=$!
    pids="$pids $rpid"
    rport=$(wait_listen "$L/$1.relay" "$rpid") && return 0
    echo "  relay did not start:" && sed 's/^/    /' "$L/$1.relay"
    return 1
}

# rebind_check NAME MODE: stops the relay and checks what it did, against the server's log:
# one rebind, from 127.0.0.1 to a new port (port) or to 127.0.0.2 (addr); answers carried on
# the new path; the server's log has "peer address OLD -> NEW" for exactly those two sockets,
# and the last address it logged is NEW. Sets $rebind_note for the PASS line.
rebind_check() {
    stop "$rpid" || return 1
    moved=$(sed -n 's/^rebind: after [^:]*: //p' "$L/$1.relay")
    old=${moved%% -> *}
    new=${moved##* -> }
    rebind_note=""
    [ -n "$moved" ] && [ "$(grep -c '^rebind: after' "$L/$1.relay")" = 1 ] || { echo "  the relay did not rebind once"; return 1; }
    case "$2:$old:$new" in
    port:127.0.0.1:*:127.0.0.1:*) [ "$old" != "$new" ] || return 1 ;;
    addr:127.0.0.1:*:127.0.0.2:*) ;;
    *) echo "  unexpected rebind: $moved" && return 1 ;;
    esac
    answered=$(sed -n 's/^rebind: path 1 from .*, \([0-9]*\) datagrams ([0-9]* bytes) answered.*/\1/p' "$L/$1.relay")
    [ "${answered:-0}" -gt 0 ] || { echo "  no answers on the new path"; return 1; }
    grep -q "^conn 1: peer address $old -> $new\$" "$L/$1.log" || { echo "  the server did not log $old -> $new"; return 1; }
    last=$(grep '^conn 1: peer address .* -> ' "$L/$1.log" | tail -n 1)
    [ "${last##* }" = "$new" ] || { echo "  the server's last peer address: $last"; return 1; }
    rebind_note="relay: $moved after $(sed -n 's/^rebind: after \([^:]*\):.*/\1/p' "$L/$1.relay"); old socket: $(
        sed -n 's/^rebind: path 0 from [^:]*:[0-9]*: .*to the server, //p' "$L/$1.relay"); new socket: $(
        sed -n 's/^rebind: path 1 from [^:]*:[0-9]*: \(.*answered\).*/\1/p' "$L/$1.relay")"
}

# What the relay said, under a FAIL line.
rebind_fail_logs() { sed 's/^/    relay| /' "$L/$1.relay"; }

# Our server (--log-paths) follows aioquic's client through the rebinding.
t_aioquic_client_rebind() {
    mode=$1
    n=aioquic-client-rebind-$mode
    need_py && our_server $n --log-paths || { result $n 0 "setup"; return; }
    rebind_relay $n "$mode" "$port" || { stop_server; result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 60 127.0.0.1 "$rport" /$REBIND_N \
        >"$L/$n.client" 2>&1 || ok=0
    rebind_check $n "$mode" || ok=0
    stop_server || ok=0
    grep -q "GET /$REBIND_N -> $REBIND_N/$REBIND_N bytes (pattern), done" "$L/$n.log" || ok=0
    if [ $ok = 1 ]; then
        echo "  $rebind_note"
        echo "  ours: $(grep '^conn 1: peer address .* -> ' "$L/$n.log" | tail -n 1 | sed 's/^conn 1: //'); $(tail -n 1 "$L/$n.client")"
    else
        rebind_fail_logs $n
    fi
    result $n $ok
}

# aioquic's server (--log-paths) follows our client through the rebinding.
t_aioquic_server_rebind() {
    mode=$1
    n=aioquic-server-rebind-$mode
    aioquic_server $n --log-paths || { result $n 0 "setup"; return; }
    rebind_relay $n "$mode" "$port" || { stop_server; result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$D/quic-client" -c "$CERTS/ca.pem" -s localhost -t 60 127.0.0.1 "$rport" /$REBIND_N \
        >"$L/$n.client" 2>&1 || ok=0
    rebind_check $n "$mode" || ok=0
    stop_server || ok=0
    new=${moved##* -> }
    grep -q "^conn 1: peer address $new validated\$" "$L/$n.log" || ok=0
    if [ $ok = 1 ]; then
        echo "  $rebind_note"
        echo "  aioquic: $(grep '^conn 1: peer address .* -> ' "$L/$n.log" | tail -n 1 | sed 's/^conn 1: //'), validated; $(tail -n 1 "$L/$n.client")"
    else
        rebind_fail_logs $n
    fi
    result $n $ok
}

# ---- (c) our server, ngtcp2 client (h3): handshake + request stream delivered

# ngtcp2_client CASE: sets $client to the first ngtcp2 client installed (Debian's ngtcp2-client
# package has gtlsclient); without one, fails CASE with the reason and returns 1.
ngtcp2_client() {
    client=""
    for b in gtlsclient qtlsclient wsslclient bsslclient; do
        command -v $b >/dev/null 2>&1 && { client=$b; return 0; }
    done
    echo "  no ngtcp2 client installed (tests/setup.sh installs Debian's ngtcp2-client)"
    result "$1" 0 "ngtcp2 client missing"
    return 1
}

t_ngtcp2_client() {
    n=ngtcp2-client-h3
    ngtcp2_client $n || return
    DEMO_ALPN=h3 our_server $n || { result $n 0 "setup"; return; }
    ok=1
    # The answer to an h3 request is not h3, so the client's own verdict does not count; it
    # only has to get through the handshake and send its request.
    timeout 30 "$client" --exit-on-all-streams-close --timeout=5s --handshake-timeout=10s \
        127.0.0.1 "$port" "https://localhost:$port/hello" >"$L/$n.client" 2>&1
    stop_server || ok=0
    grep -q '^conn 1: handshake done in .*, ALPN h3$' "$L/$n.log" || ok=0
    grep -Eq '^conn 1 stream 0: not an hq-interop request \([1-9][0-9]* bytes received' "$L/$n.log" || ok=0
    # With the stream API the server also takes the client's h3 control stream (uni, id 2).
    if [ "$stream_api" = 1 ]; then
        grep -Eq '^conn 1 stream 2 \(peer uni\): [1-9][0-9]* bytes received' "$L/$n.log" || ok=0
    fi
    [ $ok = 1 ] && echo "  $client: $(grep -m1 'handshake done' "$L/$n.log"); $(grep -m1 'stream 0:' "$L/$n.log" | sed 's/, done$//')"
    result $n $ok
}

# The zerortt case with ngtcp2's client: a first connection leaves its session and transport
# parameters in files; the second resumes and sends its h3 request in 0-RTT (its log shows the
# 0RTT STREAM frames), which our server (--early-data) accepts and receives.
t_ngtcp2_client_zerortt() {
    n=ngtcp2-client-zerortt
    ngtcp2_client $n || return
    DEMO_ALPN=h3 our_server $n --early-data --no-retry || { result $n 0 "setup"; return; }
    ok=1
    rm -f "$L/$n.session" "$L/$n.tp"
    : >"$L/$n.client"
    for k in 1 2; do
        timeout 30 "$client" --exit-on-all-streams-close --timeout=5s --handshake-timeout=10s \
            --session-file="$L/$n.session" --tp-file="$L/$n.tp" 127.0.0.1 "$port" "https://localhost:$port/hello" \
            >>"$L/$n.client" 2>&1
    done
    stop_server || ok=0
    grep -q '^conn 1: handshake done .*, full, no early data' "$L/$n.log" || ok=0
    grep -q '^conn 2: handshake done .*, resumed, early data accepted' "$L/$n.log" || ok=0
    grep -Eq '^conn 2 stream 0: not an hq-interop request \([1-9][0-9]* bytes received' "$L/$n.log" || ok=0
    grep -Eq 'frm tx [0-9]+ 0RTT STREAM\(0x0b\) id=0x0 fin=1' "$L/$n.client" || ok=0
    [ $ok = 1 ] && echo "  $client: $(grep -Ec 'frm tx [0-9]+ 0RTT STREAM' "$L/$n.client") STREAM frames sent in 0-RTT; ours: $(grep -m1 '^conn 2: handshake done' "$L/$n.log")"
    result $n $ok
}

# The interop runner's ecn case, our server and ngtcp2's client (which implements ECN on
# Linux: IP_TOS set per packet, IP_RECVTOS read). Both ends mark ECT(0) and validate ECN from
# the counts in the other's ACK frames (RFC 9000 section 13.4.2): ngtcp2 logs "path is ECN
# capable" once our server's ACKs counted its marks, and its qlog shows those ACK frames'
# ECN counts; our server's ECN figures (--log-ecn) show ngtcp2's marks read and ECN
# validated (quinn stops marking at the first ACK without ECN counts or with bad ones).
t_ngtcp2_client_ecn() {
    n=ngtcp2-client-ecn
    ngtcp2_client $n || return
    DEMO_ALPN=h3 our_server $n --log-ecn || { result $n 0 "setup"; return; }
    ok=1
    q="$L/$n.qlog"
    rm -rf "$q"
    mkdir -p "$q"
    timeout 30 "$client" --exit-on-all-streams-close --timeout=5s --handshake-timeout=10s --qlog-dir="$q" \
        127.0.0.1 "$port" "https://localhost:$port/hello" >"$L/$n.client" 2>&1
    stop_server || ok=0
    grep -q '^conn 1: handshake done in .*, ALPN h3$' "$L/$n.log" || ok=0
    # Our marks reached ngtcp2, and it counted them back in ACK frames (its qlog: ACKs sent
    # with ect0 > 0); ngtcp2 validated ECN from our ACK frames' counts.
    marked_in=$(grep -c 'Received packet: .* ecn=0x2 ' "$L/$n.client")
    grep -q 'path is ECN capable' "$L/$n.client" || ok=0
    # ACK frames with ECN counts in the qlog: in packets ngtcp2 received (ours) and sent.
    acks_in=$(cat "$q"/*.sqlog 2>/dev/null | tr '\036' '\n' | grep '"name":"transport:packet_received"' |
        grep -c '"frame_type":"ack"[^}]*"ect0":[1-9]')
    acks_out=$(cat "$q"/*.sqlog 2>/dev/null | tr '\036' '\n' | grep '"name":"transport:packet_sent"' |
        grep -c '"frame_type":"ack"[^}]*"ect0":[1-9]')
    [ "$marked_in" -gt 0 ] && [ "$acks_in" -gt 0 ] && [ "$acks_out" -gt 0 ] || ok=0
    # Ours: ngtcp2's marks read, ECN validated on our side too.
    ecn=$(grep -m1 '^conn 1: ecn: ' "$L/$n.log")
    echo "$ecn" | grep -Eq 'received [1-9][0-9]* ECT\(0\), 0 ECT\(1\), 0 CE; validated 1$' || ok=0
    echo "  $client: $marked_in packets received marked ECT(0), \"$(grep -m1 -o 'path is ECN capable' "$L/$n.client")\";" \
        "qlog: $acks_in ACK frames from us with ECN counts, $acks_out sent"
    echo "  ours: ${ecn#conn 1: }"
    result $n $ok
}

# The same with aioquic's client, which does not implement ECN: its ACKs carry no ECN counts,
# so our server stops marking after the first of them; nothing else changes.
t_aioquic_client_ecn() {
    n=aioquic-client-ecn-off
    need_py && our_server $n --log-ecn || { result $n 0 "setup"; return; }
    ok=1
    timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 60 127.0.0.1 "$port" /1000000 \
        >"$L/$n.client" 2>&1 || ok=0
    stop_server || ok=0
    grep -q "GET /1000000 -> 1000000/1000000 bytes (pattern), done" "$L/$n.log" || ok=0
    ecn=$(grep -m1 '^conn 1: ecn: ' "$L/$n.log")
    echo "$ecn" | grep -q 'validated 0$' || ok=0
    # Marked only until aioquic's first ACK: a few datagrams of 1 MB.
    sent=$(echo "$ecn" | sed -n 's/^conn 1: ecn: \([0-9]*\) datagrams sent.*/\1/p')
    [ -n "$sent" ] && [ "$sent" -lt 20 ] || ok=0
    echo "  ours: ${ecn#conn 1: }"
    result $n $ok
}

t_aioquic_client_10mb
t_aioquic_client_50_streams
t_aioquic_client_refill
t_aioquic_client_connections
t_aioquic_server_10mb
t_aioquic_server_50_streams
t_aioquic_client_keyupdate
t_aioquic_server_keyupdate
t_aioquic_server_migration
t_aioquic_client_datagrams
t_aioquic_client_zerortt
t_aioquic_server_zerortt
t_aioquic_server_datagrams
t_aioquic_client_rebind port
t_aioquic_client_rebind addr
t_aioquic_server_rebind port
t_aioquic_server_rebind addr
t_ngtcp2_client
t_ngtcp2_client_zerortt
t_ngtcp2_client_ecn
t_aioquic_client_ecn

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
