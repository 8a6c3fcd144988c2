#!/bin/sh
# `make demo`: builds the demos and shows them working on loopback.
#   part 1: quic-server + quic-client (hq-interop over QUIC): one large and a few small fetches
#   part 2: dgram-echo (datagram BIOs, zero-copy)
# `run-demo.sh --build-only` only builds build/demos/{quic-server,quic-client,dgram-echo} (the
# interop tests use it). Every wait is bounded; every process started here is stopped here.
set -eu
cd "$(dirname "$0")/.."
: "${CC:=cc}" "${BUILD:=build}" "${LIB_REL:=target/release/libosslquic.a}"
: "${LDLIBS:=-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}"
D="$BUILD/demos"
mkdir -p "$D"

# The multi-stream code needs SSL_new_stream & co. A library without them still gets working
# demos, limited to the connection's default stream (-DNO_STREAM_API).
# Probed by linking a program that takes their addresses.
stream_api=1
missing=""
{
    echo "#include <openssl/ssl.h>"
    echo "int main(void) { void *f[] = {"
    for f in SSL_new_stream SSL_accept_stream SSL_get_stream_id SSL_get_stream_type \
        SSL_set_default_stream_mode SSL_set_incoming_stream_policy SSL_get_conn_close_info; do
        echo "(void *)$f,"
    done
    echo "}; return f[0] == 0; }"
} >"$D/probe-streams.c"
if ! $CC -std=c11 -D_GNU_SOURCE -Iinclude "$D/probe-streams.c" "$LIB_REL" $LDLIBS -o "$D/probe-streams" \
    >"$D/probe-streams.log" 2>&1; then
    stream_api=0
    missing=$(grep -o -m1 "undeclared[^;]*\|undefined reference to [^ ]*" "$D/probe-streams.log" || echo "the stream API")
fi
DEFS=""
if [ "$stream_api" = 0 ]; then
    DEFS="-DNO_STREAM_API"
    echo "demo: note: no stream API in the library ($missing): demos built for the default stream only (one request per connection)" >&2
fi
cflags="-O2 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Iinclude"
for p in quic-server quic-client dgram-echo; do
    # shellcheck disable=SC2086
    $CC $cflags $DEFS "c-demos/$p.c" "$LIB_REL" $LDLIBS -o "$D/$p"
done
echo "$stream_api" >"$D/stream-api"
[ "${1:-}" = "--build-only" ] && exit 0

pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'cleanup; exit 1' INT TERM

# wait_port FILE: the port a server printed as "listening on PORT" (bounded: ~10 s).
wait_port() {
    i=0
    while [ $i -lt 100 ]; do
        port=$(sed -n 's/^listening on //p' "$1")
        [ -n "$port" ] && { echo "$port"; return 0; }
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# ---- part 1: QUIC
[ -f "$BUILD/certs/ca.pem" ] || cargo run --release --quiet --example gencert -- "$BUILD/certs" >/dev/null
"$D/quic-server" --idle-exit 60 "$BUILD/certs/chain.pem" "$BUILD/certs/key.pem" 0 >"$D/quic-server.out" 2>"$D/quic-server.log" &
spid=$!
pids="$spid"
port=$(wait_port "$D/quic-server.out") || {
    echo "demo: quic-server did not start" >&2
    cat "$D/quic-server.log" >&2
    exit 1
}
echo "demo: quic-server listening on 127.0.0.1:$port (hq-interop)"
status=0
# fetch "OPTIONS" PATH...: one quic-client run against the server, shown as it goes.
fetch() {
    opts=$1
    shift
    echo "demo: quic-client ${opts:+$opts }127.0.0.1 $port $*"
    # shellcheck disable=SC2086
    "$D/quic-client" -c "$BUILD/certs/ca.pem" -t 30 $opts 127.0.0.1 "$port" "$@" 2>&1 || {
        echo "demo: quic-client failed" >&2
        status=1
    }
}
if [ "$stream_api" = 1 ]; then
    fetch "" /100000000
    fetch "" /hello /100 /0 /65536
    fetch "-n 20 -p 5" /1000
else
    fetch "" /100000000
    fetch "" /hello
    fetch "" /65536
fi
# Let the server notice the last close (bounded), so its log is complete.
i=0
while [ $i -lt 30 ] && [ "$(grep -c ': accepted$' "$D/quic-server.log")" != "$(grep -c ': closed (' "$D/quic-server.log")" ]; do
    sleep 0.1
    i=$((i + 1))
done
kill "$spid" 2>/dev/null || true
wait "$spid" 2>/dev/null || true
pids=""
echo "demo: quic-server log:"
sed 's/^/  /' "$D/quic-server.log"
[ "$status" = 0 ] || { echo "demo: QUIC part failed" >&2; exit 1; }

# ---- part 2: datagram echo
out="$D/server.out"
"$D/dgram-echo" server 0 >"$out" 2>"$D/server.err" &
pid=$!
pids="$pid"
port=$(wait_port "$out") || {
    echo "demo: dgram-echo server did not start" >&2
    cat "$D/server.err" >&2
    exit 1
}
echo "demo: datagram echo server listening on 127.0.0.1:$port (zero-copy: BIO_read_dequeue/BIO_write_queue)"
"$D/dgram-echo" client "$port" 100000
kill $pid
wait $pid 2>/dev/null || true
pids=""
cat "$D/server.err"
echo "demo: ok"
