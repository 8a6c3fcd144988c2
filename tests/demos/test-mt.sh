#!/bin/sh
# ddd-mt in each variant (tls, listener, quic):
#   - 50 concurrent connections spread over the 3 ports (ddd-client -c 50), 100000 bytes each,
#     every byte checked by the client; the server logged 50 good connections, 17/17/16 per port
#   - TLS variants: openssl s_client fetches /1000 (bytes compared with the pattern) and an
#     HTTP/1.0 request with ALPN http/1.0 (status line, Content-Length, body, ALPN checked)
#   - QUIC: the aioquic client fetches three paths on three streams of one connection
#   - SIGTERM stops the server with status 0
. "$(dirname "$0")/common.sh"

pattern_file 1000 "$L/pattern-1000"

mt_variant() {
    v=$1
    n=mt-$v-50-connections
    client=$O/ddd-client-tls
    [ "$v" = quic ] && client=$O/ddd-client-quic
    need_bin "$O/ddd-mt-$v" "$n" || return
    start "$n" "$O/ddd-mt-$v" "$CERTS/chain.pem" "$CERTS/key.pem" 0 || { fail "$n" "server did not start"; return; }
    p0=$port p1=$((port + 1)) p2=$((port + 2))
    ok=1 why=""
    timeout 120 "$client" --ca "$CERTS/ca.pem" -c 50 -n 50 -p /100000 --ports "$p0,$p1,$p2" 127.0.0.1 "$p0" \
        >"$L/$n.client" 2>&1 || { ok=0; why="client failed"; }
    grep -q '^ok 50 failed 0 bytes 5000000 ' "$L/$n.client" || { ok=0; why="${why:-client summary wrong}"; }

    if [ "$v" = quic ]; then
        t=mt-$v-aioquic
        if need_py; then
            timeout 60 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 30 127.0.0.1 "$p1" \
                /1000 /hello /300000 >"$L/$t.client" 2>&1
            rc=$?
            # The server logs the connection once the client has closed it.
            i=0
            while [ $i -lt 50 ] && ! grep -q "port $p1: 3 requests" "$L/$n.log"; do sleep 0.1; i=$((i + 1)); done
            if [ $rc = 0 ] && grep -q "conn from .* port $p1: 3 requests, 301[0-9]* bytes sent, ok" "$L/$n.log"; then
                pass "$t"
            else
                cp "$L/$n.log" "$L/$t.log"
                fail "$t" "aioquic client (rc $rc) or server log"
            fi
        else
            fail "$t" "aioquic missing"
        fi
    else
        t=mt-$v-s_client
        printf 'GET /1000\r\n' | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$p2" -CAfile "$CERTS/ca.pem" \
            -verify_return_error >"$L/$t.body" 2>"$L/$t.client"
        rc=$?
        if [ $rc = 0 ] && cmp -s "$L/$t.body" "$L/pattern-1000"; then
            pass "$t"
        else
            fail "$t" "s_client rc $rc, $(wc -c <"$L/$t.body") bytes, pattern $(cmp -s "$L/$t.body" "$L/pattern-1000" && echo ok || echo wrong)"
        fi
        t=mt-$v-s_client-http10
        printf 'GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n' | timeout 10 openssl s_client -alpn http/1.0 -ign_eof \
            -connect "127.0.0.1:$p1" -CAfile "$CERTS/ca.pem" -verify_return_error >"$L/$t.client" 2>&1
        rc=$?
        body="osslquic ddd-mt: you asked for /hello"
        if [ $rc = 0 ] && grep -q '^ALPN protocol: http/1.0' "$L/$t.client" &&
            grep -q "^HTTP/1.0 200 OK" "$L/$t.client" &&
            grep -q "^Content-Length: $((${#body} + 1))" "$L/$t.client" && grep -q "^$body\$" "$L/$t.client"; then
            pass "$t"
        else
            fail "$t" "s_client rc $rc, or ALPN/status/length/body missing"
        fi
        # Both s_client connections must be in the log before it is counted below.
        i=0
        while [ $i -lt 50 ] && [ "$(grep -c 'conn from' "$L/$n.log")" -lt 52 ]; do sleep 0.1; i=$((i + 1)); done
    fi

    stop || { ok=0; why="${why:-server did not exit cleanly on SIGTERM}"; }
    extra=2 # s_client's two connections or the aioquic one
    [ "$v" = quic ] && extra=1
    total=$(grep -c 'conn from .*, ok$' "$L/$n.log")
    [ "$total" = $((50 + extra)) ] || { ok=0; why="${why:-server logged $total good connections, expected $((50 + extra))}"; }
    # 50 client connections round robin over the 3 ports: 17, 17, 16 (plus the extra ones).
    c0=$(grep -c "port $p0: 1 requests, 100000 bytes sent, ok" "$L/$n.log")
    c1=$(grep -c "port $p1: 1 requests, 100000 bytes sent, ok" "$L/$n.log")
    c2=$(grep -c "port $p2: 1 requests, 100000 bytes sent, ok" "$L/$n.log")
    [ "$c0/$c1/$c2" = 17/17/16 ] || { ok=0; why="${why:-per-port counts $c0/$c1/$c2, expected 17/17/16}"; }
    grep -q 'failed' "$L/$n.log" && { ok=0; why="${why:-a connection failed in the server log}"; }
    [ $ok = 1 ] && echo "  $v: $(cat "$L/$n.client")"
    result "$n" $ok "$why"
}

for v in tls listener quic; do
    mt_variant $v
done
