#!/bin/sh
# The async DDD demos, each variant (tls, listener, quic):
#   test-async-pollable.sh [DEMO]   DEMO: ddd-async-pollable (default), ddd-async-nonpollable
#                                   or ddd-async-unaddressed (test-async-nonpollable.sh and
#                                   test-async-unaddressed.sh call this script with theirs)
# Checks, per variant:
#   NAME-50-connections  ddd-client: 50 concurrent connections, each fetching /100000 (QUIC: on
#                        2 streams each), every byte checked by the client; exact summary
#   TLS variants:
#   NAME-s_client        openssl s_client fetches /1000: the bytes equal the pattern
#   NAME-s_client-http10 s_client with ALPN http/1.0, "GET /hello HTTP/1.0" + headers: ALPN,
#                        status line, Content-Length and body checked
#   QUIC:
#   NAME-aioquic         the aioquic client fetches /1000, /hello and /1000000 on 3 streams of
#                        one connection (pattern bytes checked by the client), and the server
#                        logged that connection with 3 requests and the exact byte count
#   NAME-server-log      every connection logged once, all "ok" (50 + the peers' connections),
#                        none failed; async-pollable: connections were served by both workers
#                        (DEMO_THREADS=2; each of 50+ connections lands on a worker by the
#                        kernel's SO_REUSEPORT hash, so all on one would be chance 2^-50)
#   NAME-links-freed     async-unaddressed, QUIC: the pair and listener of every client
#                        address were freed once its connection was over
#   NAME-sigterm         SIGTERM: the server frees everything and exits with status 0
#   NAME-quic-valgrind   the QUIC build under valgrind (memcheck: invalid accesses,
#                        definite/indirect/possible leaks; definedness tracking off for the
#                        reason tests/run-c.sh gives: ring's assembly) serves 4 connections x 2
#                        streams and exits cleanly on SIGTERM (about 20 s per demo).
#                        DEMO_VALGRIND=0 skips it, DEMO_VALGRIND=2 runs only it.
. "$(dirname "$0")/common.sh"

demo=${1:-ddd-async-pollable}
short=${demo#ddd-}
vg=${DEMO_VALGRIND:-1}

pattern_file 1000 "$L/pattern-1000"

# wait_logged LOG N: waits (up to 20 s) until LOG has N "conn from" lines. Servers log a
# connection once the client has closed it, which may be a little after the client exits.
wait_logged() {
    i=0
    while [ $i -lt 200 ] && [ "$(grep -c 'conn from' "$1")" -lt "$2" ]; do
        alive "$spid" || break
        sleep 0.1
        i=$((i + 1))
    done
}

async_variant() {
    v=$1
    n=$short-$v
    client=$O/ddd-client-tls
    streams=1
    [ "$v" = quic ] && client=$O/ddd-client-quic streams=2
    need_bin "$O/$demo-$v" "$n-50-connections" || return
    need_bin "$client" "$n-50-connections" || return
    if ! DEMO_THREADS=2 start "$n" "$O/$demo-$v" "$CERTS/chain.pem" "$CERTS/key.pem" 0; then
        fail "$n-50-connections" "server did not start"
        return
    fi
    expect=50

    t=$n-50-connections
    bytes=$((50 * streams * 100000))
    timeout 180 "$client" --ca "$CERTS/ca.pem" -t 60 -c 50 -n 50 -s "$streams" -p /100000 127.0.0.1 "$port" \
        >"$L/$t.client" 2>&1
    rc=$?
    if [ $rc = 0 ] && grep -q "^ok 50 failed 0 bytes $bytes " "$L/$t.client"; then
        pass "$t"
    else
        cp "$L/$n.log" "$L/$t.log"
        fail "$t" "ddd-client rc $rc: $(grep '^ok ' "$L/$t.client" || echo 'no summary')"
    fi

    if [ "$v" = quic ]; then
        t=$n-aioquic
        expect=$((expect + 1))
        if need_py; then
            timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 60 127.0.0.1 "$port" \
                /1000 /hello /1000000 >"$L/$t.client" 2>&1
            rc=$?
            wait_logged "$L/$n.log" "$expect"
            # 1000 + 1000000 pattern bytes and the text line "osslquic async-...: you asked for /hello\n"
            text="osslquic $short: you asked for /hello"
            total=$((1001000 + ${#text} + 1))
            if [ $rc = 0 ] && grep -q "conn from .* port $port: 3 requests, $total bytes sent, ok" "$L/$n.log"; then
                pass "$t"
            else
                cp "$L/$n.log" "$L/$t.log"
                fail "$t" "aioquic client rc $rc, or no server line with 3 requests and $total bytes"
            fi
        else
            fail "$t" "aioquic missing"
        fi
    else
        t=$n-s_client
        expect=$((expect + 1))
        printf 'GET /1000\r\n' | timeout 20 openssl s_client -quiet -connect "127.0.0.1:$port" -CAfile "$CERTS/ca.pem" \
            -verify_return_error -servername localhost >"$L/$t.body" 2>"$L/$t.client"
        rc=$?
        if [ $rc = 0 ] && cmp -s "$L/$t.body" "$L/pattern-1000"; then
            pass "$t"
        else
            fail "$t" "s_client rc $rc, $(wc -c <"$L/$t.body") bytes, pattern $(cmp -s "$L/$t.body" "$L/pattern-1000" && echo ok || echo wrong)"
        fi
        t=$n-s_client-http10
        expect=$((expect + 1))
        printf 'GET /hello HTTP/1.0\r\nHost: localhost\r\nUser-Agent: s_client\r\n\r\n' |
            timeout 20 openssl s_client -alpn http/1.0 -ign_eof -connect "127.0.0.1:$port" -CAfile "$CERTS/ca.pem" \
                -verify_return_error -servername localhost >"$L/$t.client" 2>&1
        rc=$?
        body="osslquic $short: you asked for /hello"
        if [ $rc = 0 ] && grep -q '^ALPN protocol: http/1.0' "$L/$t.client" &&
            grep -q "^HTTP/1.0 200 OK" "$L/$t.client" &&
            grep -q "^Content-Length: $((${#body} + 1))" "$L/$t.client" && grep -q "^$body\$" "$L/$t.client"; then
            pass "$t"
        else
            fail "$t" "s_client rc $rc, or ALPN/status/length/body missing"
        fi
    fi

    t=$n-server-log
    wait_logged "$L/$n.log" "$expect"
    good=$(grep -c 'conn from .*, ok$' "$L/$n.log")
    bad=$(grep -c 'conn from .*, failed: ' "$L/$n.log")
    why=""
    [ "$good" = "$expect" ] || why="$good connections logged ok, expected $expect"
    [ "$bad" = 0 ] || why="${why:+$why; }$bad failed: $(grep -m1 'failed: ' "$L/$n.log" | sed 's/^.*failed: //')"
    if [ "$demo" = ddd-async-pollable ]; then
        tids=$(sed -n 's/^\[[^]]* tid \([0-9]*\)\] conn from .*/\1/p' "$L/$n.log" | sort -u | wc -l)
        [ "$tids" = 2 ] || why="${why:+$why; }connections served by $tids worker thread(s), expected 2"
    fi
    cp "$L/$n.log" "$L/$t.log"
    if [ -z "$why" ]; then pass "$t"; else fail "$t" "$why"; fi

    if [ "$demo" = ddd-async-unaddressed ] && [ "$v" = quic ]; then
        # One pair and listener per client address, freed once its connection is over (after
        # the closing period): every connection came from its own address here.
        t=$n-links-freed
        i=0
        while [ $i -lt 200 ] && [ "$(grep -c 'datagram pair and listener freed$' "$L/$n.log")" -lt "$expect" ]; do
            sleep 0.1
            i=$((i + 1))
        done
        freed=$(grep -c 'datagram pair and listener freed$' "$L/$n.log")
        addrs=$(sed -n 's/^.*conn from \([0-9.:]*\) port .*/\1/p' "$L/$n.log" | sort -u | wc -l)
        if [ "$freed" = "$expect" ] && [ "$addrs" = "$expect" ]; then
            pass "$t"
        else
            cp "$L/$n.log" "$L/$t.log"
            fail "$t" "$freed links freed, $addrs client addresses, expected $expect of each"
        fi
    fi

    t=$n-sigterm
    if stop; then
        pass "$t"
    else
        cp "$L/$n.log" "$L/$t.log"
        fail "$t" "no clean exit on SIGTERM"
    fi
}

# The QUIC build under valgrind: a few connections, then SIGTERM; errors make the exit status 99.
valgrind_quic() {
    t=$short-quic-valgrind
    need_bin "$O/$demo-quic" "$t" || return
    command -v valgrind >/dev/null 2>&1 || { fail "$t" "valgrind not installed"; return; }
    if ! DEMO_THREADS=2 start "$t" valgrind -q --error-exitcode=99 --leak-check=full \
        --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
        --undef-value-errors=no "$O/$demo-quic" "$CERTS/chain.pem" "$CERTS/key.pem" 0; then
        fail "$t" "server did not start under valgrind"
        return
    fi
    timeout 180 "$O/ddd-client-quic" --ca "$CERTS/ca.pem" -t 120 -c 4 -n 4 -s 2 -p /100000 127.0.0.1 "$port" \
        >"$L/$t.client" 2>&1
    rc=$?
    wait_logged "$L/$t.log" 4
    good=$(grep -c 'conn from .*, ok$' "$L/$t.log")
    if stop && [ $rc = 0 ] && [ "$good" = 4 ] && ! grep -q '^==[0-9]*==' "$L/$t.log"; then
        pass "$t"
    else
        fail "$t" "client rc $rc, $good of 4 connections ok, or valgrind reported errors (exit status 99)"
    fi
}

if [ "$vg" != 2 ]; then
    for v in tls listener quic; do
        async_variant "$v"
    done
fi
[ "$vg" = 0 ] || valgrind_quic
exit 0
