#!/bin/sh
# `make demo`: builds the demos and runs a server and a client that exchange data on loopback.
set -eu
cd "$(dirname "$0")/.."
: "${CC:=cc}" "${BUILD:=build}" "${LIB_REL:=target/release/libosslquic.a}"
: "${LDLIBS:=-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}"
mkdir -p "$BUILD/demos"
$CC -O2 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Iinclude c-demos/dgram-echo.c "$LIB_REL" $LDLIBS -o "$BUILD/demos/dgram-echo"

out="$BUILD/demos/server.out"
"$BUILD/demos/dgram-echo" server 0 >"$out" 2>"$BUILD/demos/server.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
port=""
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do # bounded: at most ~10 s
    port=$(sed -n 's/^listening on //p' "$out")
    [ -n "$port" ] || sleep 0.1
    i=$((i + 1))
done
[ -n "$port" ] || { echo "demo: server did not start" >&2; cat "$BUILD/demos/server.err" >&2; exit 1; }
echo "demo: datagram echo server listening on 127.0.0.1:$port (zero-copy: BIO_read_dequeue/BIO_write_queue)"
"$BUILD/demos/dgram-echo" client "$port" 100000
kill $pid
wait $pid 2>/dev/null || true
cat "$BUILD/demos/server.err"
echo "demo: ok"
