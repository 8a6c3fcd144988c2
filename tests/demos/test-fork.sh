#!/bin/sh
# ddd-fork in each variant (a child process per connection):
#   - tls, listener: 20 concurrent connections (ddd-client -c 20), 1000000 bytes each, every
#     byte checked; 20 different child pids (none the parent's) logged them; plus one
#     openssl s_client fetch compared with the pattern
#   - quic: 20 concurrent aioquic clients each fetch /1000000 (every byte checked by the
#     client); 20 different child pids served them; every child's engine stats say foreign=0
#     (no child was handed another's datagrams) and accepted>=1; then 20 more connections
#     from ddd-client -c 20, also served by 20 new children
#   - SIGTERM stops the server with status 0
. "$(dirname "$0")/common.sh"

pattern_file 1000 "$L/pattern-1000"

# conn_pids LOG PATTERN: the pids of the log lines matching PATTERN, one per line.
conn_pids() {
    grep -- "$2" "$1" | sed -n 's/^\[[^ ]* pid \([0-9]*\) .*/\1/p'
}

# wait_lines LOG PATTERN COUNT: up to 20 s for COUNT lines matching PATTERN (children log once
# their client has closed the connection).
wait_lines() {
    i=0
    while [ $i -lt 200 ] && [ "$(grep -c -- "$2" "$1")" -lt "$3" ]; do
        sleep 0.1
        i=$((i + 1))
    done
}

# check_children LOG PATTERN COUNT: COUNT matching lines from COUNT distinct pids, none of
# them the parent's. Prints nothing and returns 0, or prints why.
check_children() {
    parent=$(sed -n 's/^\[[^ ]* pid \([0-9]*\) .*listening on 127.0.0.1 port.*/\1/p' "$1")
    lines=$(grep -c -- "$2" "$1")
    distinct=$(conn_pids "$1" "$2" | sort -u | wc -l)
    if [ "$lines" != "$3" ] || [ "$distinct" != "$3" ]; then
        echo "$lines connection lines from $distinct pids, expected $3 and $3"
        return 1
    fi
    if [ -z "$parent" ] || conn_pids "$1" "$2" | grep -qx "$parent"; then
        echo "the parent (pid ${parent:-?}) served a connection itself"
        return 1
    fi
    return 0
}

fork_tls_variant() {
    v=$1
    n=fork-$v-20-connections
    need_bin "$O/ddd-fork-$v" "$n" || return
    start "$n" "$O/ddd-fork-$v" "$CERTS/chain.pem" "$CERTS/key.pem" 0 || { fail "$n" "server did not start"; return; }
    ok=1 why=""
    timeout 120 "$O/ddd-client-tls" --ca "$CERTS/ca.pem" -c 20 -n 20 -p /1000000 127.0.0.1 "$port" \
        >"$L/$n.client" 2>&1 || { ok=0; why="client failed"; }
    grep -q '^ok 20 failed 0 bytes 20000000 ' "$L/$n.client" || { ok=0; why="${why:-client summary wrong}"; }

    t=fork-$v-s_client
    printf 'GET /1000\r\n' | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$port" -CAfile "$CERTS/ca.pem" \
        -verify_return_error >"$L/$t.body" 2>"$L/$t.client"
    rc=$?
    if [ $rc = 0 ] && cmp -s "$L/$t.body" "$L/pattern-1000"; then pass "$t"; else fail "$t" "s_client rc $rc or wrong bytes"; fi

    pat='conn from .* 1 requests, 1000000 bytes sent, ok$'
    wait_lines "$L/$n.log" "$pat" 20
    wait_lines "$L/$n.log" '1 requests, 1000 bytes sent, ok$' 1
    stop || { ok=0; why="${why:-server did not exit cleanly on SIGTERM}"; }
    w=$(check_children "$L/$n.log" "$pat" 20) || { ok=0; why="${why:-$w}"; }
    grep -q 'failed' "$L/$n.log" && { ok=0; why="${why:-a connection failed in the server log}"; }
    [ $ok = 1 ] && echo "  $v: $(cat "$L/$n.client"), 20 child pids"
    result "$n" $ok "$why"
}

fork_quic() {
    n=fork-quic-20-aioquic-clients
    need_bin "$O/ddd-fork-quic" "$n" || return
    need_py || { fail "$n" "aioquic missing"; return; }
    start "$n" "$O/ddd-fork-quic" "$CERTS/chain.pem" "$CERTS/key.pem" 0 || { fail "$n" "server did not start"; return; }
    ok=1 why=""
    cpids=""
    k=0
    while [ $k -lt 20 ]; do
        timeout 120 "$PY" tests/interop/hq_client.py --ca "$CERTS/ca.pem" --timeout 90 127.0.0.1 "$port" /1000000 \
            >"$L/$n.client.$k" 2>&1 &
        cpids="$cpids $!"
        k=$((k + 1))
    done
    bad=0
    for p in $cpids; do wait "$p" || bad=$((bad + 1)); done
    cat "$L/$n.client".* >"$L/$n.client"
    rm -f "$L/$n.client".*
    [ $bad = 0 ] || { ok=0; why="$bad of 20 aioquic clients failed"; }
    [ "$(grep -c '^hq_client: 1 requests ok' "$L/$n.client")" = 20 ] || { ok=0; why="${why:-not 20 client successes}"; }
    pat='conn from .* 1 requests, 1000000 bytes sent, ok$'
    wait_lines "$L/$n.log" "$pat" 20
    wait_lines "$L/$n.log" '\] stats: ' 20
    w=$(check_children "$L/$n.log" "$pat" 20) || { ok=0; why="${why:-$w}"; }
    # Every child's stats (this process's own figures from the fork on): datagrams received,
    # none of another connection (foreign=0), nothing forwarded or accepted by the child.
    nstats=$(grep -c '\] stats: in=[1-9][0-9]* foreign=0 forwarded=0 accepted=0' "$L/$n.log")
    [ "$nstats" = 20 ] || { ok=0; why="${why:-$nstats of 20 children have stats with foreign=0}"; }
    conn_pids "$L/$n.log" "$pat" | sort >"$L/$n.connpids"
    conn_pids "$L/$n.log" '\] stats: ' | sort >"$L/$n.statpids"
    cmp -s "$L/$n.connpids" "$L/$n.statpids" || { ok=0; why="${why:-the stats lines come from other pids than the connection lines}"; }
    [ $ok = 1 ] && echo "  20 aioquic clients, 1000000 bytes each, served by 20 children; $(grep -m1 '\] stats: ' "$L/$n.log" | sed 's/^.*\] //') (first child)"
    result "$n" $ok "$why"

    t=fork-quic-20-ddd-client
    : >"$L/$t.log"
    ok=1 why=""
    timeout 120 "$O/ddd-client-quic" --ca "$CERTS/ca.pem" -c 20 -n 20 -p /100000 127.0.0.1 "$port" \
        >"$L/$t.client" 2>&1 || { ok=0; why="client failed"; }
    grep -q '^ok 20 failed 0 bytes 2000000 ' "$L/$t.client" || { ok=0; why="${why:-client summary wrong}"; }
    pat2='conn from .* 1 requests, 100000 bytes sent, ok$'
    wait_lines "$L/$n.log" "$pat2" 20
    stop || { ok=0; why="${why:-server did not exit cleanly on SIGTERM}"; }
    cp "$L/$n.log" "$L/$t.log"
    w=$(check_children "$L/$n.log" "$pat2" 20) || { ok=0; why="${why:-$w}"; }
    [ "$(conn_pids "$L/$n.log" 'conn from .*, ok$' | sort -u | wc -l)" = 40 ] || { ok=0; why="${why:-not 40 distinct children over both runs}"; }
    grep -q 'failed' "$L/$n.log" && { ok=0; why="${why:-a connection failed in the server log}"; }
    grep -q '\] stats: .* foreign=[1-9]' "$L/$n.log" && { ok=0; why="${why:-a child saw foreign datagrams}"; }
    [ $ok = 1 ] && echo "  $(cat "$L/$t.client"); $(grep '\] parent stats: ' "$L/$n.log" | sed 's/^.*\] //')"
    result "$t" $ok "$why"
}

fork_tls_variant tls
fork_tls_variant listener
fork_quic
