# The key-exchange group part of tests/openssl/run.sh (sourced by it: uses its pass/fail,
# build_one, have, free_port, wait_bound, stop_server, $servers, $O, $L, $C, $OSSL_PREFIX). Issue 16: OpenSSL
# 3.5 offers X25519MLKEM768 first, and so do we (aws-lc-rs); every pairing must use it.
#   groups-PROTO-SB-server--CB-client   tests/openssl/groups_peer.c built against us (ours)
#                                       and OpenSSL 3.5 (ossl), TLS and QUIC, all four
#                                       pairings: both ends report X25519MLKEM768
#                                       (SSL_get_negotiated_group, SSL_group_to_name and
#                                       SSL_get0_group_name agreeing) and exchange data
#   groups-...-GROUPS                   with a list set on one end (SSL_CTX_set1_groups_list):
#                                       the group both report is the one that list forces
#   groups-s_client--ours-server        `openssl s_client` prints "Negotiated TLS1.3 group:
#                                       X25519MLKEM768" against our TLS server
#   groups-ours-client--s_server        our TLS client against `openssl s_server -www`, which
#                                       lists X25519MLKEM768 first among the groups we offered

build_one groups_peer tests/openssl/groups_peer.c
OSSL_BIN="$OSSL_PREFIX/bin/openssl"

# gp_server BUILD PROTO NAME [GROUPS]: starts groups_peer's server (log $L/NAME.server); sets
# gp_pid and gp_port (empty if it did not start within 5 s).
gp_server() {
    : >"$L/$3.server"
    timeout -k 2 15 stdbuf -o0 "$O/$1/groups_peer" "$2-server" "$C/chain.pem" "$C/key.pem" ${4:+"$4"} \
        >"$L/$3.server" 2>&1 &
    gp_pid=$!
    servers="$servers $gp_pid"
    gp_port=""
    i=0
    while [ $i -lt 50 ] && [ -z "$gp_port" ]; do
        gp_port=$(sed -n 's/^listening on //p' "$L/$3.server")
        kill -0 "$gp_pid" 2>/dev/null || break
        [ -n "$gp_port" ] || sleep 0.1
        i=$((i + 1))
    done
}

# gp_wait PID: its exit status, waiting at most 15 s (the programs bound themselves to 10 s).
gp_wait() {
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 150 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1"
}

# gp_pair PROTO SB CB WANT [SGROUPS] [CGROUPS]: one handshake between groups_peer builds; both
# ends must print "group WANT" and "done".
gp_pair() {
    proto=$1 sb=$2 cb=$3 want=$4 sg=${5:-} cg=${6:-}
    t="groups-$proto-$sb-server${sg:+-$sg}--$cb-client${cg:+-$cg}"
    have "$O/$sb/groups_peer" "$t" || return
    have "$O/$cb/groups_peer" "$t" || return
    gp_server "$sb" "$proto" "$t" "$sg"
    if [ -z "$gp_port" ]; then
        fail "$t" "server did not start: $(tail -n 3 "$L/$t.server" | tr '\n' ' ')"
        stop_server "$gp_pid"
        return
    fi
    timeout -k 2 15 "$O/$cb/groups_peer" "$proto-client" "$gp_port" "$C/ca.pem" ${cg:+"$cg"} \
        >"$L/$t.client" 2>&1
    rc=$?
    gp_wait "$gp_pid"
    src=$?
    if [ $rc = 0 ] && [ $src = 0 ] && grep -q "^group $want nid " "$L/$t.client" &&
        grep -q "^group $want nid " "$L/$t.server" && grep -q '^done$' "$L/$t.client" &&
        grep -q '^done$' "$L/$t.server"; then
        pass "$t" "$(grep '^group' "$L/$t.client") at both ends"
    else
        fail "$t" "client rc $rc, server rc $src; client: $(tr '\n' ' ' <"$L/$t.client" | cut -c 1-200); server: $(tr '\n' ' ' <"$L/$t.server" | cut -c 1-200)"
    fi
}

for proto in tls quic; do
    for sb in ours ossl; do
        for cb in ours ossl; do
            gp_pair "$proto" "$sb" "$cb" X25519MLKEM768
        done
    done
done
# Lists chosen on one end decide, across implementations: a client offering X25519 only; a
# server accepting secp384r1 only, which a default client did not send a key share for (a
# HelloRetryRequest asks for it).
gp_pair tls ossl ours x25519 "" X25519
gp_pair tls ours ossl x25519 "" X25519
gp_pair quic ours ossl secp384r1 secp384r1 ""
gp_pair quic ossl ours secp384r1 secp384r1 ""
gp_pair tls ours ossl secp384r1 secp384r1 ""

# openssl s_client against our TLS server.
t=groups-s_client--ours-server
if have "$O/ours/groups_peer" "$t"; then
    gp_server ours tls "$t"
    if [ -n "$gp_port" ]; then
        printf ping | timeout -k 2 10 "$OSSL_BIN" s_client -connect "127.0.0.1:$gp_port" \
            -servername localhost -CAfile "$C/ca.pem" -verify_return_error -ign_eof \
            >"$L/$t.client" 2>&1
        rc=$?
        gp_wait "$gp_pid"
        if [ $rc = 0 ] && grep -q '^Negotiated TLS1.3 group: X25519MLKEM768$' "$L/$t.client" &&
            grep -q '^group X25519MLKEM768 nid 0x10011ec$' "$L/$t.server"; then
            pass "$t" "s_client: $(grep '^Negotiated TLS1.3 group' "$L/$t.client")"
        else
            fail "$t" "s_client rc $rc: $(grep -m 2 -i 'group\|error' "$L/$t.client" | tr '\n' ' '); server: $(tr '\n' ' ' <"$L/$t.server" | cut -c 1-200)"
        fi
    else
        fail "$t" "server did not start: $(tail -n 3 "$L/$t.server" | tr '\n' ' ')"
        stop_server "$gp_pid"
    fi
fi

# Our TLS client against openssl s_server -www (its page lists the groups we offered).
t=groups-ours-client--s_server
if have "$O/ours/groups_peer" "$t"; then
    port=$(free_port tcp)
    timeout -k 2 15 "$OSSL_BIN" s_server -accept "127.0.0.1:$port" -cert "$C/chain.pem" \
        -key "$C/key.pem" -www -naccept 1 >"$L/$t.server" 2>&1 &
    spid=$!
    servers="$servers $spid"
    if wait_bound tcp "$port" "$spid"; then
        GP_HTTP=1 timeout -k 2 15 "$O/ours/groups_peer" tls-client "$port" "$C/ca.pem" \
            >"$L/$t.client" 2>&1
        rc=$?
        gp_wait "$spid"
        if [ $rc = 0 ] && grep -q '^group X25519MLKEM768 nid 0x10011ec$' "$L/$t.client" &&
            grep -q '^Supported groups: X25519MLKEM768:' "$L/$t.client" &&
            grep -q '^done$' "$L/$t.client"; then
            pass "$t" "ours: $(grep '^group' "$L/$t.client"); s_server saw $(grep '^Supported groups' "$L/$t.client")"
        else
            fail "$t" "client rc $rc: $(tr '\n' ' ' <"$L/$t.client" | cut -c 1-200); s_server: $(tail -n 3 "$L/$t.server" | tr '\n' ' ')"
        fi
    else
        fail "$t" "s_server did not bind port $port: $(tail -n 3 "$L/$t.server" | tr '\n' ' ')"
        stop_server "$spid"
    fi
fi
