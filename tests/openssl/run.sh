#!/bin/bash
# OpenSSL's own programs as a test suite: compiled unchanged from OpenSSL 3.5's source tree
# against osslquic (-Iinclude, the release library) and against OpenSSL 3.5 itself (the
# reference twins), then run against each other. Prints one "PASS name" or "FAIL name: why"
# line per test and ends with `N passed, N failed`. Logs: build/openssl/logs/.
#   run.sh [compile|guide|ddd|hq|groups]...   only those parts (default: all)
# Tests:
#   compile-PROG-{ours,ossl}   each program of demos/guide, the 14 builds of doc/designs/ddd
#                              (7 clients, TLS and -DUSE_QUIC) and both hq-interop endpoints;
#                              a link failure lists the symbols osslquic lacks
#   guide-PAIR-SERVER-CLIENT   the guide's server/client pairs in the four pairings
#                              (ours/ossl x ours/ossl), bytes compared
#   ddd-CLIENT-BUILD-SERVER    each DDD client build (ours and OpenSSL's) against each of our
#                              six DDD servers (c-demos); the whole HTTP/1.0 answer compared
#   hq-CASE-CLIENT-SERVER      the hq-interop endpoints, ours against OpenSSL's in both
#                              directions, through the interop runner cases OpenSSL's
#                              run_endpoint.sh supports, plus 1,000 small files; files
#                              compared byte for byte
#   groups-*                   the key-exchange group both ends report (tests/openssl/groups.sh):
#                              X25519MLKEM768 by default between OpenSSL 3.5 and us, TLS and
#                              QUIC, both directions; openssl s_client and s_server too
# OpenSSL comes from tests/openssl/fetch.sh (OSSL_PREFIX, OSSL_WORK override where); when it
# cannot be had, every test is one FAIL line saying so.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
: "${CC:=cc}" "${BUILD:=build}" "${LIB_REL:=target/release/libosslquic.a}"
: "${LDLIBS:=-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}"
: "${OSSL_PREFIX:=/opt/openssl-3.5}" "${OSSL_WORK:=/var/tmp/openssl-3.5-src}"
# Seconds a client may run (DDD_T: a DDD client, whose answer is 100 bytes); a server is
# killed when its tests are done.
: "${T:=10}" "${DDD_T:=5}"
case $BUILD in /*) O="$BUILD/openssl" ;; *) O="$ROOT/$BUILD/openssl" ;; esac
L="$O/logs"
mkdir -p "$L" "$O/ours" "$O/ossl"
passed=0
failed=0
parts=${*:-compile guide ddd hq groups}
want() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }

pass() {
    echo "PASS $1${2:+ ($2)}"
    passed=$((passed + 1))
}
fail() {
    echo "FAIL $1: $2$(known "$1")"
    failed=$((failed + 1))
}

# known TEST: a note naming the known cause of a failure, if there is one (the failure
# still counts). Kept here so that a fixed defect shows up as a test that passes.
known() {
    case $1 in
    ddd-0[12]-*-quic-ours--*) echo " [known defect: BIO_new_ssl_connect over QUIC does not connect]" ;;
    ddd-06-mem-uv-*-ours--*) echo " [known defect: at the end of the answer osslquic's SSL_read returns -1 where OpenSSL's returns 0 (TLS: close_notify; QUIC: every failure), and the demo hands a result that is not WANT_READ to fwrite as a length: garbage, then a hang]" ;;
    ddd-0[456]-*-quic-ossl--ddd-async-unaddressed) ;;
    ddd-0[456]-*-quic-ossl--*) echo " [known defect if the server used Retry: OpenSSL's ClientHello spans two datagrams and the handshake stalls after Retry (strace: two Retry packets, then silence)]" ;;
    guide-quic-server-non-block-*) echo " [the demo server ends its read at the first SSL_read that leaves SSL_has_pending 0, so it echoes only what arrived by then: timing-dependent]" ;;
    esac
}

GUIDE="quic-client-block quic-client-non-block quic-multi-stream quic-server-block
quic-server-non-block tls-client-block tls-client-non-block tls-server-block"
DDD="ddd-01-conn-blocking ddd-02-conn-nonblocking ddd-02-conn-nonblocking-threads
ddd-03-fd-blocking ddd-04-fd-nonblocking ddd-05-mem-nonblocking ddd-06-mem-uv"
HQ="quic-hq-interop quic-hq-interop-server"

if ! S=$(bash tests/openssl/fetch.sh "$OSSL_PREFIX" "$OSSL_WORK" 2>"$L/fetch.log" | tail -n 1) || [ ! -d "$S" ]; then
    why="OpenSSL 3.5 is not available: $(tail -n 1 "$L/fetch.log")"
    for p in $GUIDE $HQ; do fail "compile-$p" "$why"; done
    for p in $DDD; do fail "compile-$p" "$why"; done
    fail "guide, ddd and hq runs" "$why"
    echo "$passed passed, $failed failed"
    exit 1
fi
[ -f "$LIB_REL" ] || cargo build --release --quiet

# ---- helpers

# free_port udp|tcp: a port the kernel just handed out on loopback.
free_port() {
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if sys.argv[1] == "udp" else socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' "$1"
}

# wait_bound udp|tcp PORT PID: up to 5 s for a socket bound to PORT (0 once bound).
wait_bound() {
    flag=-ulnH
    [ "$1" = tcp ] && flag=-tlnH
    i=0
    while [ $i -lt 50 ]; do
        ss $flag "sport = :$2" 2>/dev/null | grep -q . && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# stop_server PID: SIGTERM, up to 3 s, then SIGKILL.
stop_server() {
    kill -TERM "$1" 2>/dev/null
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 30 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

servers=""
trap 'for p in $servers; do kill -KILL "$p" 2>/dev/null; done' EXIT

# missing_syms LOG: the undefined symbols a failed link reported.
missing_syms() {
    sed -n "s/.*undefined reference to \`\([A-Za-z0-9_]*\)'.*/\1/p" "$1" | sort -u | tr '\n' ' '
}

# build_one NAME SRC FLAGS...: NAME against ours and against OpenSSL.
build_one() {
    name=$1 src=$2
    shift 2
    extra=""
    case $name in *uv*) extra="-luv" ;; esac
    log="$L/compile-$name-ours.log"
    # shellcheck disable=SC2086
    if $CC -g -Wall -std=gnu11 -Iinclude "$@" "$src" "$LIB_REL" $LDLIBS $extra -o "$O/ours/$name" >"$log" 2>&1; then
        # Every OpenSSL header must be ours: one missing here would silently come from the
        # system's /usr/include/openssl.
        stray=$($CC -Iinclude "$@" -M "$src" 2>/dev/null | tr ' \\' '\n\n' | grep 'openssl/' | grep -v "^include/openssl/" | grep -vxF "$src" | sort -u | tr '\n' ' ')
        if [ -n "$stray" ]; then
            fail "compile-$name-ours" "headers not from include/: $stray"
            rm -f "$O/ours/$name"
        else
            pass "compile-$name-ours"
        fi
    else
        rm -f "$O/ours/$name"
        m=$(missing_syms "$log")
        if [ -n "$m" ]; then
            fail "compile-$name-ours" "link: osslquic lacks $m"
        else
            fail "compile-$name-ours" "$(grep -m 3 'error' "$log" | tr '\n' ' ')"
        fi
    fi
    log="$L/compile-$name-ossl.log"
    # shellcheck disable=SC2086
    if $CC -g -Wall -std=gnu11 -I"$OSSL_PREFIX/include" "$@" "$src" -L"$OSSL_PREFIX/lib" \
        -Wl,-rpath,"$OSSL_PREFIX/lib" -lssl -lcrypto $extra -o "$O/ossl/$name" >"$log" 2>&1; then
        pass "compile-$name-ossl"
    else
        rm -f "$O/ossl/$name"
        fail "compile-$name-ossl" "$(grep -m 3 'error' "$log" | tr '\n' ' ')"
    fi
}

# ---- 1. compile every program, both ways

if want compile; then
    for p in $GUIDE; do build_one "$p" "$S/demos/guide/$p.c"; done
    for p in $DDD; do
        build_one "$p-tls" "$S/doc/designs/ddd/$p.c"
        build_one "$p-quic" "$S/doc/designs/ddd/$p.c" -DUSE_QUIC
    done
    for p in $HQ; do build_one "$p" "$S/test/quic-openssl-docker/hq-interop/$p.c"; done
fi

# Test certificates, a private copy (other suites regenerate build/certs).
C="$O/certs"
if [ ! -f "$C/ca.pem" ]; then
    cargo run --release --quiet --example gencert -- "$C" >/dev/null 2>&1 || fail certs "gencert failed"
fi

# have BIN TEST: 0 if BIN was built, else a FAIL line for TEST naming the compile log.
have() {
    [ -x "$1" ] && return 0
    fail "$2" "$(basename "$(dirname "$1")")/$(basename "$1") not built (see compile-$(basename "$1")-$(basename "$(dirname "$1")"))"
    return 1
}

# ---- 2. the guide's pairs

mkdir -p "$C/tls-server"
cp "$C/chain.pem" "$C/tls-server/chain.pem"
cp "$C/key.pem" "$C/tls-server/pkey.pem"

# The guide clients send this, print what comes back and then a newline.
guide_request() { printf 'GET / HTTP/1.0\r\nConnection: close\r\nHost: localhost\r\n\r\n'; }
guide_request >"$L/guide-request"
{
    guide_request
    printf '\n'
} >"$L/guide-expect"

# guide_pair SERVER CLIENT PROTO: the four pairings.
guide_pair() {
    srv=$1 cli=$2 proto=$3
    expect="$L/guide-expect${4:+-$4}"
    for sb in ours ossl; do
        for cb in ours ossl; do
            t="guide-$srv-$sb--$cli-$cb"
            have "$O/$sb/$srv" "$t" || continue
            have "$O/$cb/$cli" "$t" || continue
            # quic-server-non-block echoes only what arrived by its first SSL_read that leaves
            # SSL_has_pending at 0, and the non-blocking client writes its request in five
            # SSL_write calls: when they travel in separate packets the echo is a prefix. That
            # happens with OpenSSL's own server and client too (2 of 24 pairs in one trial),
            # so this pair gets up to 5 runs and must answer exactly in one of them; a library
            # that always cut the request short still fails.
            tries=1
            [ "$srv" = quic-server-non-block ] && tries=5
            while :; do
            port=$(free_port "$proto")
            if [ "$proto" = udp ]; then
                stdbuf -o0 timeout -k 2 60 "$O/$sb/$srv" "$port" "$C/chain.pem" "$C/key.pem" >"$L/$t.server" 2>&1 &
            else
                # tls-server-block loads chain.pem and pkey.pem from its working directory.
                (cd "$C/tls-server" && exec timeout -k 2 60 "$O/$sb/$srv" "$port") >"$L/$t.server" 2>&1 &
            fi
            spid=$!
            servers="$servers $spid"
            if ! wait_bound "$proto" "$port" "$spid"; then
                fail "$t" "server did not bind port $port: $(tail -n 2 "$L/$t.server" | tr '\n' ' ')"
                stop_server "$spid"
                continue 2
            fi
            # The TLS echo pair never ends by design: the server echoes until the client
            # closes, the client reads until the server closes. So the TLS client gets a
            # short bound, and the check is the echoed request (OpenSSL's pair does the same).
            lim=$T
            [ "$proto" = tcp ] && lim=3
            SSL_CERT_FILE="$C/ca.pem" timeout -k 2 "$lim" stdbuf -o0 "$O/$cb/$cli" localhost "$port" >"$L/$t.out" 2>"$L/$t.err"
            rc=$?
            stop_server "$spid"
            tries=$((tries - 1))
            if [ "$proto" = udp ] && [ $tries -gt 0 ] && ! { [ $rc = 0 ] && cmp -s "$L/$t.out" "$expect"; }; then
                echo "retry $t: the echo was cut short ($(wc -c <"$L/$t.out") bytes)" >>"$L/guide-retries"
                continue
            fi
            break
            done
            if [ "$proto" = udp ]; then
                if [ $rc = 0 ] && cmp -s "$L/$t.out" "$expect"; then
                    pass "$t"
                else
                    fail "$t" "client rc $rc, $(wc -c <"$L/$t.out") bytes out, answer $(cmp -s "$L/$t.out" "$expect" && echo exact || echo wrong): $(tail -n 2 "$L/$t.out" "$L/$t.err" 2>/dev/null | tr '\n' ' ' | cut -c 1-200)"
                fi
            else
                if [ $rc = 124 ] && cmp -s "$L/$t.out" "$L/guide-request"; then
                    pass "$t" "request echoed exactly; the pair then waits on each other until the bound, as designed"
                else
                    fail "$t" "client rc $rc (124 expected: the pair waits on each other), $(wc -c <"$L/$t.out") bytes out, echo $(cmp -s "$L/$t.out" "$L/guide-request" && echo exact || echo wrong): $(tail -n 2 "$L/$t.err" | tr '\n' ' ')"
                fi
            fi
        done
    done
}

if want guide; then
    guide_pair quic-server-block quic-client-block udp
    guide_pair quic-server-non-block quic-client-non-block udp
    guide_pair tls-server-block tls-client-block tcp
    guide_pair tls-server-block tls-client-non-block tcp
    # quic-multi-stream against tests/openssl/multi-stream-server.c (ours, built both ways):
    # the answer to request 1 on stream 1, to request 2 on a stream the server opens.
    for b in ours ossl; do
        if [ $b = ours ]; then
            # shellcheck disable=SC2086
            $CC -g -Wall -Wextra -Werror -Iinclude tests/openssl/multi-stream-server.c "$LIB_REL" $LDLIBS \
                -o "$O/ours/multi-stream-server" >"$L/compile-multi-stream-server-ours.log" 2>&1
        else
            $CC -g -Wall -Wextra -Werror -I"$OSSL_PREFIX/include" tests/openssl/multi-stream-server.c \
                -L"$OSSL_PREFIX/lib" -Wl,-rpath,"$OSSL_PREFIX/lib" -lssl -lcrypto \
                -o "$O/ossl/multi-stream-server" >"$L/compile-multi-stream-server-ossl.log" 2>&1
        fi || fail "compile-multi-stream-server-$b" "$(grep -m 2 error "$L/compile-multi-stream-server-$b.log" | tr '\n' ' ')"
    done
    printf 'Stream 1 data:\nmulti-stream-server: you asked for /request1.html\n\nStream 3 data:\nmulti-stream-server: you asked for /request2.html\n\n' \
        >"$L/guide-expect-multi"
    guide_pair multi-stream-server quic-multi-stream udp multi
fi

# ---- 3. the DDD clients against our DDD servers

# ddd_expect NAME: our servers' answer to "GET / HTTP/1.0".
ddd_expect() {
    body="osslquic $1: you asked for /"
    printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s\n' $((${#body} + 1)) "$body"
}

if want ddd; then
    if ! BUILD="$BUILD/openssl" sh c-demos/build-ddd.sh --quiet >"$L/build-ddd.log" 2>&1; then
        echo "  (some DDD servers did not build: $L/build-ddd.log)"
    fi
    for srv in ddd-mt ddd-fork ddd-prefork ddd-async-pollable ddd-async-nonpollable ddd-async-unaddressed; do
        name=${srv#ddd-}
        case $srv in ddd-mt | ddd-fork | ddd-prefork) name=$srv ;; esac
        ddd_expect "$name" >"$L/ddd-expect-$srv"
        for v in tls quic; do
            bin="$O/ddd/$srv-$v"
            if [ ! -x "$bin" ]; then
                why=$(grep "^$srv-$v:" "$O/ddd/missing" 2>/dev/null | sed 's/^[^:]*: //')
                for p in $DDD; do
                    for b in ours ossl; do fail "$p-$v-$b--$srv" "server $srv-$v not built${why:+: $why}"; done
                done
                continue
            fi
            : >"$L/ddd-$srv-$v.out"
            # The QUIC servers write a qlog per connection (ours: QLOGDIR), kept only when one of
            # their clients fails: what the server sent and received, for a failure that does not
            # come back when run again.
            qlogs="$L/qlog-ddd-$srv-$v"
            rm -rf "$qlogs"
            mkdir -p "$qlogs"
            failed_before=$failed
            QLOGDIR="$qlogs" DEMO_ALPN=dummy,hq-interop,http/1.0 timeout -k 2 300 "$bin" "$C/chain.pem" "$C/key.pem" 0 \
                >"$L/ddd-$srv-$v.out" 2>"$L/ddd-$srv-$v.log" &
            spid=$!
            servers="$servers $spid"
            port=""
            i=0
            while [ $i -lt 100 ] && [ -z "$port" ]; do
                port=$(sed -n 's/^listening on //p' "$L/ddd-$srv-$v.out")
                [ -n "$port" ] || sleep 0.1
                i=$((i + 1))
            done
            if [ -z "$port" ]; then
                for p in $DDD; do
                    for b in ours ossl; do fail "$p-$v-$b--$srv" "server $srv-$v did not start"; done
                done
                stop_server "$spid"
                continue
            fi
            for p in $DDD; do
                for b in ours ossl; do
                    t="$p-$v-$b--$srv"
                    have "$O/$b/$p-$v" "$t" || continue
                    SSL_CERT_FILE="$C/ca.pem" timeout -k 2 "$DDD_T" "$O/$b/$p-$v" localhost "$port" >"$L/$t.out" 2>"$L/$t.err"
                    rc=$?
                    if [ $rc = 0 ] && cmp -s "$L/$t.out" "$L/ddd-expect-$srv"; then
                        pass "$t"
                    else
                        what="answer wrong"
                        cmp -s "$L/$t.out" "$L/ddd-expect-$srv" && what="answer exact"
                        [ $rc = 124 ] && rc="124 (timed out after ${DDD_T} s)"
                        fail "$t" "client rc $rc, $(wc -c <"$L/$t.out") bytes, $what: $(tail -n 2 "$L/$t.err" | tr '\n' ' ' | cut -c 1-200)"
                    fi
                done
            done
            stop_server "$spid"
            if [ "$failed" = "$failed_before" ] || [ "$v" = tls ]; then
                rm -rf "$qlogs"
            else
                echo "  (the server's qlog files: $qlogs)"
            fi
        done
    done
fi

# ---- 4. hq-interop, ours against OpenSSL's

if want hq; then
    . tests/openssl/hq.sh
fi

# ---- 5. key-exchange groups (issue 16): X25519MLKEM768 between OpenSSL 3.5 and us

if want groups; then
    . tests/openssl/groups.sh
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
