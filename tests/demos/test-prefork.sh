#!/bin/sh
# ddd-prefork in each variant, DEMO_WORKERS=4:
#   - 40 connections (8 at a time) over the 3 ports with ddd-client, 100000 bytes each, every
#     byte checked; the server logged 40 good connections, 14/13/13 per port, each on one line
#     naming one pid, and every such pid is one of the 4 workers (no connection was served by
#     the parent or by a process that is not a worker)
#   - tls, listener: one openssl s_client fetch compared with the pattern
#   - quic: 3 aioquic clients (one per port) as well; each worker's engine stats at exit:
#     accepted = the connections it logged (so each connection was accepted and served by the
#     same worker), foreign=0 (datagrams were routed exactly, no worker saw another's)
#   - quic, NAT rebinding: an aioquic client behind tests/demos/nat_relay.py, which moves the
#     client to a new source port after its 50th datagram, fetches /5000000: it completes with
#     every byte right, and the relay saw answers arrive on the new port
#   - SIGTERM to the parent stops the workers and the parent (status 0)
. "$(dirname "$0")/common.sh"

pattern_file 1000 "$L/pattern-1000"

# wait_lines LOG PATTERN COUNT: up to 20 s for COUNT lines matching PATTERN.
wait_lines() {
    i=0
    while [ $i -lt 200 ] && [ "$(grep -c -- "$2" "$1")" -lt "$3" ]; do
        sleep 0.1
        i=$((i + 1))
    done
}

# line_pids LOG PATTERN: the pids of the log lines matching PATTERN, one per line.
line_pids() {
    grep -- "$2" "$1" | sed -n 's/^\[[^ ]* pid \([0-9]*\) .*/\1/p'
}

prefork_variant() {
    v=$1
    n=prefork-$v-40-connections
    client=$O/ddd-client-tls
    [ "$v" = quic ] && client=$O/ddd-client-quic
    need_bin "$O/ddd-prefork-$v" "$n" || return
    start "$n" env DEMO_WORKERS=4 "$O/ddd-prefork-$v" "$CERTS/chain.pem" "$CERTS/key.pem" 0 ||
        { fail "$n" "server did not start"; return; }
    p0=$port p1=$((port + 1)) p2=$((port + 2))
    ok=1 why=""
    wait_lines "$L/$n.log" '\] worker [0-3] ready$' 4
    timeout 120 "$client" --ca "$CERTS/ca.pem" -c 8 -n 40 -p /100000 --ports "$p0,$p1,$p2" 127.0.0.1 "$p0" \
        >"$L/$n.client" 2>&1 || { ok=0; why="client failed"; }
    grep -q '^ok 40 failed 0 bytes 4000000 ' "$L/$n.client" || { ok=0; why="${why:-client summary wrong}"; }
    extra=0
    if [ "$v" = quic ]; then
        t=prefork-quic-aioquic
        if need_py; then
            cpids=""
            for p in $p0 $p1 $p2; do
                timeout 60 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 40 127.0.0.1 "$p" \
                    /1000 /hello >"$L/$t.client.$p" 2>&1 &
                cpids="$cpids $!"
            done
            bad=0
            for p in $cpids; do wait "$p" || bad=$((bad + 1)); done
            cat "$L/$t.client".* >"$L/$t.client"
            rm -f "$L/$t.client".*
            wait_lines "$L/$n.log" 'conn from .* 2 requests, 10[0-9][0-9] bytes sent, ok$' 3
            if [ $bad = 0 ] && [ "$(grep -c 'conn from .* 2 requests, 10[0-9][0-9] bytes sent, ok$' "$L/$n.log")" = 3 ]; then
                pass "$t"
            else
                fail "$t" "$bad aioquic clients failed, or the server did not log 3 connections of 2 requests"
            fi
            extra=3
        else
            fail "$t" "aioquic missing"
        fi
    else
        t=prefork-$v-s_client
        printf 'GET /1000\r\n' | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$p1" -CAfile "$CERTS/ca.pem" \
            -verify_return_error >"$L/$t.body" 2>"$L/$t.client"
        rc=$?
        if [ $rc = 0 ] && cmp -s "$L/$t.body" "$L/pattern-1000"; then pass "$t"; else fail "$t" "s_client rc $rc or wrong bytes"; fi
        extra=1
    fi
    wait_lines "$L/$n.log" 'conn from .*, ok$' $((40 + extra))
    stop || { ok=0; why="${why:-server did not exit cleanly on SIGTERM}"; }

    log=$L/$n.log
    line_pids "$log" '\] worker [0-3] ready$' | sort -u >"$L/$n.workers"
    [ "$(wc -l <"$L/$n.workers")" = 4 ] || { ok=0; why="${why:-not 4 distinct workers}"; }
    total=$(grep -c 'conn from .*, ok$' "$log")
    [ "$total" = $((40 + extra)) ] || { ok=0; why="${why:-$total good connections logged, expected $((40 + extra))}"; }
    c0=$(grep -c "port $p0: 1 requests, 100000 bytes sent, ok$" "$log")
    c1=$(grep -c "port $p1: 1 requests, 100000 bytes sent, ok$" "$log")
    c2=$(grep -c "port $p2: 1 requests, 100000 bytes sent, ok$" "$log")
    [ "$c0/$c1/$c2" = 14/13/13 ] || { ok=0; why="${why:-per-port counts $c0/$c1/$c2, expected 14/13/13}"; }
    # Every connection line was written by a worker.
    line_pids "$log" 'conn from ' | sort -u >"$L/$n.servers"
    if [ -n "$(comm -23 "$L/$n.servers" "$L/$n.workers")" ]; then
        ok=0
        why="${why:-a connection was served by a process that is not a worker}"
    fi
    grep -q 'failed' "$log" && { ok=0; why="${why:-a connection failed in the server log}"; }
    spread=""
    for w in $(cat "$L/$n.workers"); do
        cw=$(grep -c "^\[ddd-prefork pid $w .*conn from " "$log")
        spread="$spread $cw"
        if [ "$v" = quic ]; then
            st=$(grep "^\[ddd-prefork pid $w .*\] stats: " "$log" | sed 's/^.*\] stats: //')
            acc=$(echo "$st" | sed -n 's/.* accepted=\([0-9]*\).*/\1/p')
            foreign=$(echo "$st" | sed -n 's/.* foreign=\([0-9]*\).*/\1/p')
            [ "$acc" = "$cw" ] || { ok=0; why="${why:-worker $w logged $cw connections but its stats say accepted=${acc:-none}}"; }
            [ "$foreign" = 0 ] || { ok=0; why="${why:-worker $w saw foreign=${foreign:-?} datagrams}"; }
        fi
    done
    [ $ok = 1 ] && echo "  $v: $(cat "$L/$n.client"); connections per worker:$spread"
    result "$n" $ok "$why"
}

prefork_nat() {
    n=prefork-quic-nat-rebinding
    need_bin "$O/ddd-prefork-quic" "$n" || return
    need_py || { fail "$n" "aioquic missing"; return; }
    start "$n" env DEMO_WORKERS=4 "$O/ddd-prefork-quic" "$CERTS/chain.pem" "$CERTS/key.pem" 0 ||
        { fail "$n" "server did not start"; return; }
    server_pid=$spid server_port=$port
    wait_lines "$L/$n.log" '\] worker [0-3] ready$' 4
    start "$n-relay" python3 tests/demos/nat_relay.py --target "$server_port" --switch-after 50 --lifetime 120 ||
        { fail "$n" "relay did not start"; return; }
    relay_pid=$spid relay_port=$port
    ok=1 why=""
    timeout 90 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 60 127.0.0.1 "$relay_port" /5000000 \
        >"$L/$n.client" 2>&1 || { ok=0; why="the aioquic client failed through the relay"; }
    grep -q '^hq_client: 1 requests ok' "$L/$n.client" || { ok=0; why="${why:-no success line from the client}"; }
    spid=$relay_pid
    stop >/dev/null 2>&1
    relay=$(grep '^relay: ' "$L/$n-relay.out")
    # The server answered the client at its new address: answers arrived on the new port.
    echo "$relay" | grep -Eq '; [1-9][0-9]* sent and [1-9][0-9]* answers received on the new port' ||
        { ok=0; why="${why:-the relay did not carry traffic over the new port: $relay}"; }
    wait_lines "$L/$n.log" 'conn from .* 1 requests, 5000000 bytes sent, ok$' 1
    spid=$server_pid
    stop || { ok=0; why="${why:-server did not exit cleanly on SIGTERM}"; }
    [ "$(grep -c 'conn from .* 1 requests, 5000000 bytes sent, ok$' "$L/$n.log")" = 1 ] ||
        { ok=0; why="${why:-the server did not log the connection as served in full}"; }
    [ $ok = 1 ] && {
        echo "  $(tail -n 1 "$L/$n.client")"
        echo "  $relay"
        grep '\] stats: ' "$L/$n.log" | sed 's/^\[[^ ]* pid \([0-9]*\) .*\] stats: /  worker \1: /'
    }
    result "$n" $ok "$why"
}

for v in tls listener quic; do
    prefork_variant $v
done
prefork_nat
