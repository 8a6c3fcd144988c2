#!/bin/sh
# TLS over TCP interop on 127.0.0.1, ending with `N passed, N failed`.
#   our server (tests/tls/tls_peer.c, listener API) <- openssl s_client (TLS 1.2, 1.3),
#       Python's ssl client (TLS 1.2, 1.3)
#   our server requiring client certificates <- openssl s_client with a good certificate
#       (TLS 1.3, 1.2; the CA names it is sent), with none, with an untrusted one
#   our client -> openssl s_server -WWW (TLS 1.2, 1.3; and resuming a session), Python's ssl
#       server (with ALPN)
#   ALPN mismatch, both directions: a no_application_protocol alert and a clear error
#   100 concurrent clients against the listener-API server, every byte checked
#   hostile peers: a close in the middle of a record (request and response side, and a server
#       doing it to our client), garbage instead of a ClientHello, a slowloris client; the
#       server reports each, keeps serving others meanwhile, and leaks no descriptor or thread
# Needs the openssl command-line tool and python3 (tests/setup.sh). Every process started here
# is bounded with `timeout` and stopped here; ports are chosen by the system.
# Known library bugs are marked XFAIL (not counted as failures) and listed at the end; one that
# starts passing prints XPASS and counts as passed.
# Logs: build/tls/<test>.*
set -u
cd "$(dirname "$0")/../.."
: "${BUILD:=build}"
L="$BUILD/tls"
CERTS="$BUILD/certs"
LIB="${LIB_REL:-target/release/libosslquic.a}"
# TLS_PEER=path: run everything with another build of tls_peer.c, e.g. one linked against the
# system's OpenSSL (cc tests/tls/tls_peer.c -lssl -lcrypto -lpthread), to check the tests:
# with Debian's OpenSSL 3.0.19 every test passes and every XFAIL is an XPASS.
PEER="${TLS_PEER:-$L/tls_peer}"
PY="python3 tests/tls/pypeer.py"
export OSSLQUIC_CERTS="$CERTS"
mkdir -p "$L"
passed=0
failed=0
xfailed=""
pids=""

cleanup() {
    for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { # fail NAME [FILE...]: the files' tails are shown
    echo "FAIL $1"
    failed=$((failed + 1))
    shift
    for f in "$@"; do [ -f "$f" ] && echo "  -- $f" && tail -n 15 "$f" | sed 's/^/    | /'; done
}
# xfail NAME WHY FILE...: a known library bug (reported), expected to fail for now.
xfail() {
    echo "XFAIL $1 ($2)"
    xfailed="$xfailed
  $1: $2"
    shift 2
    for f in "$@"; do [ -f "$f" ] && tail -n 5 "$f" | sed 's/^/    | /'; done
}
xpass() { echo "XPASS $1 (a known bug no longer shows: remove the XFAIL mark)"; passed=$((passed + 1)); }

# check_known NAME GOOD BUG WHY FILE...: PASS if GOOD holds; XFAIL if the known bug's
# symptom BUG shows instead (reported); else FAIL.
check_known() {
    name=$1 good=$2 bug=$3 why=$4
    shift 4
    if eval "$good"; then
        pass "$name"
    elif eval "$bug"; then
        xfail "$name" "$why" "$@"
    else
        fail "$name" "$@"
    fi
}

# check NAME COND FILE...: PASS if the shell condition holds, else FAIL with the files.
check() {
    name=$1 cond=$2
    shift 2
    if eval "$cond"; then pass "$name"; else fail "$name" "$@"; fi
}

for tool in openssl python3 timeout cc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "tls: $tool missing (run tests/setup.sh)"; echo "0 passed, 1 failed"; exit 1; }
done
[ -f "$LIB" ] || make lib >"$L/make-lib.log" 2>&1 || { tail "$L/make-lib.log"; echo "0 passed, 1 failed"; exit 1; }
# badclient-key.pem is the newest output: a directory without it predates the client certificates.
[ -f "$CERTS/badclient-key.pem" ] || cargo run --release --quiet --example gencert -- "$CERTS" >/dev/null 2>&1
# shellcheck disable=SC2086
if [ -z "${TLS_PEER:-}" ] && ! ${CC:-cc} -O2 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Iinclude tests/tls/tls_peer.c \
    "$LIB" ${LDLIBS:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc} -o "$PEER" >"$L/build.log" 2>&1; then
    cat "$L/build.log"
    echo "0 passed, 1 failed"
    exit 1
fi

# alive PID: the process exists and is not a zombie.
alive() {
    [ -r "/proc/$1/stat" ] && ! sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | grep -q '^Z'
}

# start NAME ARGS...: our server in the background (stdout NAME.out, stderr NAME.err), waits
# up to 10 s for "listening on PORT"; sets $port and $spid.
start() {
    name=$1
    shift
    : >"$L/$name.out" # before the background start, so no earlier run's port is read
    timeout 600 "$PEER" server "$@" 0 >"$L/$name.out" 2>"$L/$name.err" &
    spid=$!
    pids="$pids $spid"
    port=""
    i=0
    while [ $i -lt 100 ]; do
        port=$(sed -n 's/^listening on //p' "$L/$name.out")
        [ -n "$port" ] && return 0
        alive "$spid" || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "  server $name did not start"
    cat "$L/$name.err"
    return 1
}

# stop_server NAME: the server must still be running (no crash); then it is killed.
stop_server() {
    if alive "$spid"; then
        kill -TERM "$spid" 2>/dev/null
        wait "$spid" 2>/dev/null
        return 0
    fi
    wait "$spid"
    echo "  server $1 had exited with status $?" >>"$L/$1.err"
    return 1
}

# wait_log FILE PATTERN: up to 10 s for an extended regex to appear in FILE.
wait_log() {
    i=0
    while [ $i -lt 100 ]; do
        grep -Eq "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# free_port: a port nobody listens on (for openssl s_server, which cannot report port 0).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# expected N FILE: the server's N-byte pattern.
expected() {
    python3 -c "import sys; p=b'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'; sys.stdout.buffer.write((p*($1//62+1))[:$1])" >"$2"
}

# ---------------------------------------------------------------- our server <- others
start main || { echo "0 passed, 1 failed"; exit 1; }
S=$L/main.out
MAIN=$spid
MAINPORT=$port

for v in 1_3 1_2; do
    t=sclient-tls$v
    n=$((100000 + 17))
    expected $n "$L/$t.want"
    printf 'GET /%d\r\n' $n | timeout 20 openssl s_client -connect "127.0.0.1:$port" "-tls$v" \
        -CAfile "$CERTS/ca.pem" -verify_return_error -verify_hostname localhost -quiet \
        >"$L/$t.got" 2>"$L/$t.err"
    rc=$?
    vv=$(echo $v | tr _ .)
    check "our server <- openssl s_client -tls$v: $n bytes" \
        "[ $rc = 0 ] && cmp -s '$L/$t.want' '$L/$t.got' && wait_log '$S' 'served $n bytes \\(TLSv$vv, alpn=-\\)\$'" \
        "$L/$t.err" "$S"
done

for v in 13 12; do
    t=pyclient-tls$v
    flag=""
    [ $v = 12 ] && flag=--tls12
    timeout 20 $PY client "$port" 250000 $flag >"$L/$t.out" 2>&1
    rc=$?
    check "our server <- python ssl client TLS $v: 250000 bytes, close_notify both ways" \
        "[ $rc = 0 ] && grep -q '^OK TLSv1.$(echo $v | cut -c2) alpn=- bytes=250000\$' '$L/$t.out' && wait_log '$S' 'served 250000 bytes \\(TLSv1.$(echo $v | cut -c2), alpn=-\\)\$'" \
        "$L/$t.out" "$S"
done

timeout 20 "$PEER" client localhost "$port" /0 >"$L/ours-empty.out" 2>&1
check "our client -> our server: empty response, then close_notify" \
    "[ $? = 0 ] && grep -q '^OK TLSv1.3 alpn=- bytes=0\$' '$L/ours-empty.out'" "$L/ours-empty.out"

# ---------------------------------------------------------------- client certificates
# Our server requiring client certificates from the test CA (-V) <- openssl s_client with a
# certificate from that CA, with none, and with one from another CA.
if start clientauth -V "$CERTS/ca.pem"; then
    CA_OUT=$L/clientauth.out
    for v in 1_3 1_2; do
        t=sclient-cert-tls$v
        n=1000
        expected $n "$L/$t.want"
        printf 'GET /%d\r\n' $n | timeout 20 openssl s_client -connect "127.0.0.1:$port" "-tls$v" \
            -CAfile "$CERTS/ca.pem" -verify_return_error -cert "$CERTS/client-cert.pem" \
            -key "$CERTS/client-key.pem" -quiet >"$L/$t.got" 2>"$L/$t.err"
        rc=$?
        vv=$(echo $v | tr _ .)
        check "our server requiring a client certificate <- openssl s_client -tls$v -cert" \
            "[ $rc = 0 ] && cmp -s '$L/$t.want' '$L/$t.got' && wait_log '$CA_OUT' 'client /C=DE/O=osslquic tests/CN=test client \\(verify result 0\\)\$' && wait_log '$CA_OUT' 'served $n bytes \\(TLSv$vv, alpn=-\\)\$'" \
            "$L/$t.err" "$CA_OUT"
    done
    # The CertificateRequest names the CAs of SSL_CTX_set_client_CA_list.
    t=sclient-ca-names
    printf 'GET /10\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
        -CAfile "$CERTS/ca.pem" -cert "$CERTS/client-cert.pem" -key "$CERTS/client-key.pem" \
        >"$L/$t.out" 2>&1
    check "our server's CertificateRequest names the client CA list" \
        "grep -A1 '^Acceptable client certificate CA names' '$L/$t.out' | grep -q 'CN *= *osslquic test CA'" \
        "$L/$t.out"
    before=$(grep -c FAILED "$CA_OUT")
    t=sclient-nocert
    printf 'GET /10\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
        -CAfile "$CERTS/ca.pem" -quiet >"$L/$t.got" 2>"$L/$t.err"
    check "our server requiring a client certificate <- openssl s_client without one: refused" \
        "[ ! -s '$L/$t.got' ] && grep -qi 'certificate required' '$L/$t.err' && wait_log '$CA_OUT' 'FAILED handshake: .*peer did not return a certificate'" \
        "$L/$t.err" "$CA_OUT"
    t=sclient-badcert
    printf 'GET /10\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
        -CAfile "$CERTS/ca.pem" -cert "$CERTS/badclient-cert.pem" -key "$CERTS/badclient-key.pem" \
        -quiet >"$L/$t.got" 2>"$L/$t.err"
    check "our server requiring a client certificate <- openssl s_client with an untrusted one: refused" \
        "[ ! -s '$L/$t.got' ] && grep -qi 'unknown ca' '$L/$t.err' && [ \$(grep -c FAILED '$CA_OUT') -ge \$((before + 2)) ] && grep -q 'certificate verify failed' '$CA_OUT'" \
        "$L/$t.err" "$CA_OUT"
    stop_server clientauth || fail "client-certificate server still running at the end" "$L/clientauth.err"
else
    fail "client-certificate server did not start" "$L/clientauth.err"
fi

# ---------------------------------------------------------------- our client -> others
mkdir -p "$L/www"
expected 300000 "$L/www/300000"
for v in 1_3 1_2; do
    t=sserver-tls$v
    p=$(free_port)
    : >"$L/$t.srv"
    (cd "$L/www" && exec timeout 30 openssl s_server -accept "127.0.0.1:$p" -cert "$OLDPWD/$CERTS/chain.pem" \
        -key "$OLDPWD/$CERTS/key.pem" -WWW "-tls$v" -alpn x,http/1.1) >"$L/$t.srv" 2>&1 &
    sp=$!
    pids="$pids $sp"
    wait_log "$L/$t.srv" '^ACCEPT'
    timeout 20 "$PEER" client -w -a http/1.1 localhost "$p" /300000 >"$L/$t.out" 2>&1
    rc=$?
    vv=$(echo $v | tr _ .)
    check "our client -> openssl s_server -WWW -tls$v: 300000 bytes, ALPN, close_notify" \
        "[ $rc = 0 ] && grep -q '^OK TLSv$vv alpn=http/1.1 bytes=300000\$' '$L/$t.out'" "$L/$t.out" "$L/$t.srv"
    # Sessions: the second connection offers the first one's session and resumes.
    timeout 20 "$PEER" client -w -r localhost "$p" /300000 >"$L/$t-resume.out" 2>&1
    rc=$?
    check "our client -> openssl s_server -WWW -tls$v: SSL_get1_session, SSL_set_session: resumed" \
        "[ $rc = 0 ] && sed -n 1p '$L/$t-resume.out' | grep -q '^OK TLSv$vv alpn=- bytes=300000 reused=0\$' && sed -n 2p '$L/$t-resume.out' | grep -q '^OK TLSv$vv alpn=- bytes=300000 reused=1\$'" \
        "$L/$t-resume.out" "$L/$t.srv"
    kill "$sp" 2>/dev/null
    wait "$sp" 2>/dev/null
done

for v in 13 12; do
    t=pyserver-tls$v
    flag=""
    [ $v = 12 ] && flag=--tls12
    rm -f "$L/$t.port"
    timeout 30 $PY server "$L/$t.port" --alpn x,http/1.1 $flag >"$L/$t.srv" 2>&1 &
    sp=$!
    pids="$pids $sp"
    wait_log "$L/$t.port" '^[0-9]+$'
    timeout 20 "$PEER" client -a foo,http/1.1 localhost "$(cat "$L/$t.port" 2>/dev/null)" /1000000 >"$L/$t.out" 2>&1
    rc=$?
    wait "$sp"
    src=$?
    vv=1.$(echo $v | cut -c2)
    check "our client -> python ssl server TLS $v: 1000000 bytes, ALPN, close_notify both ways" \
        "[ $rc = 0 ] && [ $src = 0 ] && grep -q '^OK TLSv$vv alpn=http/1.1 bytes=1000000\$' '$L/$t.out' && grep -q '^served 1000000 bytes (TLSv$vv, alpn=http/1.1)' '$L/$t.srv'" \
        "$L/$t.out" "$L/$t.srv"
done

# ---------------------------------------------------------------- early data (TLS 1.3 0-RTT)
# With OpenSSL 3.5's command-line tool when tests/openssl/fetch.sh has built it, else the
# system's. Our client -> s_server -WWW -early_data (which takes the request from early data):
# the second connection resumes and its early data is accepted. s_client -sess_out, then
# -sess_in -early_data -> our server (-E): the request arrives as early data, accepted; the
# same session file again (a replayed ticket) is refused, the request then comes after the
# handshake (s_client -quiet sends stdin), and the server serves it either way.
OSSL_ED=/opt/openssl-3.5/bin/openssl
[ -x "$OSSL_ED" ] || OSSL_ED=openssl
echo "early data: $($OSSL_ED version)"
t=sserver-early
# OpenSSL 3.0 (the system's here) refuses -early_data with -WWW; 3.5 takes it.
if "$OSSL_ED" version | grep -Eq '^OpenSSL 3\.[01]\.'; then
    echo "SKIP our client -> openssl s_server -WWW -early_data: needs OpenSSL 3.5 (tests/openssl/fetch.sh builds it into /opt/openssl-3.5)"
else
p=$(free_port)
expected 5000 "$L/www/5000"
: >"$L/$t.srv"
(cd "$L/www" && exec timeout 30 "$OSSL_ED" s_server -accept "127.0.0.1:$p" -cert "$OLDPWD/$CERTS/chain.pem" \
    -key "$OLDPWD/$CERTS/key.pem" -WWW -tls1_3 -early_data) >"$L/$t.srv" 2>&1 &
sp=$!
pids="$pids $sp"
wait_log "$L/$t.srv" '^ACCEPT'
timeout 20 "$PEER" client -w -r -e localhost "$p" /5000 >"$L/$t.out" 2>&1
rc=$?
check "our client -> openssl s_server -WWW -early_data: the resumed connection's request as early data, accepted" \
    "[ $rc = 0 ] && sed -n 1p '$L/$t.out' | grep -q '^OK TLSv1.3 alpn=- bytes=5000 reused=0\$' && sed -n 2p '$L/$t.out' | grep -q '^OK TLSv1.3 alpn=- bytes=5000 reused=1 early=accepted\$'" \
    "$L/$t.out" "$L/$t.srv"
kill "$sp" 2>/dev/null
wait "$sp" 2>/dev/null
fi

if start early -E 16384; then
    E=$L/early.out
    t=sclient-early
    n=3000
    expected $n "$L/$t.want"
    rm -f "$L/$t.sess"
    printf 'GET /%d\r\n' $n | timeout 20 "$OSSL_ED" s_client -connect "127.0.0.1:$port" -tls1_3 \
        -CAfile "$CERTS/ca.pem" -verify_return_error -sess_out "$L/$t.sess" -quiet \
        >"$L/$t-1.got" 2>"$L/$t-1.err"
    rc=$?
    "$OSSL_ED" sess_id -in "$L/$t.sess" -noout -text >"$L/$t.sess.txt" 2>&1
    check "our server -E <- openssl s_client -sess_out: a session that allows early data" \
        "[ $rc = 0 ] && cmp -s '$L/$t.want' '$L/$t-1.got' && wait_log '$E' '^conn 1: early data 0 bytes \\(not sent\\)\$' && grep -q 'Max Early Data: 16384' '$L/$t.sess.txt'" \
        "$L/$t-1.err" "$E" "$L/$t.sess.txt"
    printf 'GET /%d\r\n' $n >"$L/$t.req"
    cp "$L/$t.sess" "$L/$t.sess0"
    timeout 20 "$OSSL_ED" s_client -connect "127.0.0.1:$port" -tls1_3 -CAfile "$CERTS/ca.pem" \
        -verify_return_error -sess_in "$L/$t.sess0" -early_data "$L/$t.req" -quiet \
        </dev/null >"$L/$t-2.got" 2>"$L/$t-2.err"
    rc=$?
    check "our server -E <- openssl s_client -sess_in -early_data: the request in early data, accepted and served" \
        "[ $rc = 0 ] && cmp -s '$L/$t.want' '$L/$t-2.got' && wait_log '$E' '^conn 2: early data 11 bytes \\(accepted\\)\$' && wait_log '$E' '^conn 2: served $n bytes'" \
        "$L/$t-2.err" "$E"
    printf 'GET /%d\r\n' $n | timeout 20 "$OSSL_ED" s_client -connect "127.0.0.1:$port" -tls1_3 \
        -CAfile "$CERTS/ca.pem" -verify_return_error -sess_in "$L/$t.sess0" -early_data "$L/$t.req" \
        -quiet >"$L/$t-3.got" 2>"$L/$t-3.err"
    rc=$?
    check "our server -E <- the same ticket replayed with early data: refused (single use), the request served after the handshake" \
        "[ $rc = 0 ] && cmp -s '$L/$t.want' '$L/$t-3.got' && wait_log '$E' '^conn 3: early data 0 bytes \\(rejected\\)\$' && wait_log '$E' '^conn 3: served $n bytes'" \
        "$L/$t-3.err" "$E"
    stop_server early || fail "early-data server still running at the end" "$L/early.err"
else
    fail "early-data server did not start" "$L/early.err"
fi

# ---------------------------------------------------------------- ALPN
# The server's choice through SSL_CTX_set_alpn_select_cb, the only way an OpenSSL server
# negotiates ALPN.
start alpn-cb -a foo,http/1.1 || fail "alpn-cb server start"
timeout 20 "$PEER" client -a http/1.1 localhost "$port" /10 >"$L/alpn-cb.client" 2>&1
check "ALPN chosen by the server's SSL_CTX_set_alpn_select_cb" \
    "grep -q '^OK TLSv1.3 alpn=http/1.1 bytes=10\$' '$L/alpn-cb.client'" "$L/alpn-cb.client"
stop_server alpn-cb

# Mismatch, with the server's list also set by SSL_CTX_set_alpn_protos (-A), which the
# library's TLS servers use today.
start alpn -A -a foo,http/1.1 || fail "alpn server start"
A=$L/alpn.out
printf 'GET /10\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$port" -alpn bar \
    -CAfile "$CERTS/ca.pem" -quiet >"$L/alpn-sclient.out" 2>"$L/alpn-sclient.err"
rc=$?
check "ALPN mismatch: openssl s_client gets a no_application_protocol alert" \
    "[ $rc != 0 ] && grep -q 'tlsv1 alert no application protocol' '$L/alpn-sclient.err' && [ ! -s '$L/alpn-sclient.out' ] && wait_log '$A' '^conn 1: FAILED handshake: SSL_ERROR_SSL'" \
    "$L/alpn-sclient.err" "$A"
timeout 20 $PY client "$port" 10 --alpn bar,baz >"$L/alpn-py.out" 2>&1
rc=$?
check "ALPN mismatch: python ssl client gets a no_application_protocol alert" \
    "[ $rc != 0 ] && grep -Eiq 'no.application.protocol' '$L/alpn-py.out' && wait_log '$A' '^conn 2: FAILED handshake: SSL_ERROR_SSL'" \
    "$L/alpn-py.out" "$A"
timeout 20 "$PEER" client -a bar localhost "$port" /10 >"$L/alpn-ours.out" 2>&1
rc=$?
check "ALPN mismatch: our client reports the no_application_protocol alert" \
    "[ $rc != 0 ] && grep -Eiq 'FAILED handshake: SSL_ERROR_SSL.*no ?application ?protocol' '$L/alpn-ours.out' && wait_log '$A' '^conn 3: FAILED handshake: SSL_ERROR_SSL'" \
    "$L/alpn-ours.out" "$A"
# What OpenSSL's server queues here: SSL_R_NO_APPLICATION_PROTOCOL, "no application protocol".
check "ALPN mismatch: our server's error says \"no application protocol\"" \
    "grep -q '^conn 1: FAILED handshake:.*no application protocol' '$A'" "$A"
timeout 20 "$PEER" client localhost "$port" /10 >"$L/alpn-none.out" 2>&1
check "ALPN: a client offering no ALPN is still served (as OpenSSL does)" \
    "[ $? = 0 ] && grep -q '^OK TLSv1.3 alpn=- bytes=10\$' '$L/alpn-none.out'" "$L/alpn-none.out"
stop_server alpn

p=$(free_port)
: >"$L/alpn-sserver.srv"
(cd "$L/www" && exec timeout 30 openssl s_server -accept "127.0.0.1:$p" -cert "$OLDPWD/$CERTS/chain.pem" \
    -key "$OLDPWD/$CERTS/key.pem" -WWW -alpn foo) >"$L/alpn-sserver.srv" 2>&1 &
sp=$!
pids="$pids $sp"
wait_log "$L/alpn-sserver.srv" '^ACCEPT'
timeout 20 "$PEER" client -w -a bar localhost "$p" /300000 >"$L/alpn-sserver.out" 2>&1
rc=$?
check "ALPN mismatch: our client -> openssl s_server -alpn foo: alert on both sides" \
    "[ $rc != 0 ] && grep -Eiq 'FAILED handshake: SSL_ERROR_SSL.*no ?application ?protocol' '$L/alpn-sserver.out' && wait_log '$L/alpn-sserver.srv' 'no application protocol'" \
    "$L/alpn-sserver.out" "$L/alpn-sserver.srv"
kill "$sp" 2>/dev/null
wait "$sp" 2>/dev/null

# ---------------------------------------------------------------- 100 concurrent clients
# Baseline of the main server's descriptors and threads, for the leak check at the end.
spid=$MAIN
port=$MAINPORT
# $spid is `timeout`; the server is its child.
SPROC=$(cat "/proc/$spid/task/$spid/children" 2>/dev/null | awk '{print $1}')
base_fds=$(ls "/proc/$SPROC/fd" | wc -l)
base_threads=$(ls "/proc/$SPROC/task" | wc -l)
i=1
cpids=""
while [ $i -le 100 ]; do
    flag=""
    [ $((i % 3)) = 0 ] && flag=-2
    timeout 60 "$PEER" client $flag localhost "$port" "/$((i * 1000 + i))" >"$L/conc.$i" 2>&1 &
    cpids="$cpids $!"
    i=$((i + 1))
done
bad=0
for c in $cpids; do wait "$c" || bad=$((bad + 1)); done
ok=$(cat "$L"/conc.* | grep -c '^OK TLSv1\.[23] alpn=- bytes=[0-9]*$')
ok12=$(cat "$L"/conc.* | grep -c '^OK TLSv1\.2 ')
check "100 concurrent clients against the listener-API server, all bytes verified" \
    "[ $bad = 0 ] && [ $ok = 100 ] && [ $ok12 = 33 ]" $(grep -L '^OK' "$L"/conc.* | head -3) "$S"
rm -f "$L"/conc.*

# ---------------------------------------------------------------- hostile peers
count_before=$(grep -c '^conn ' "$S")
timeout 20 $PY midrecord-client "$port" >"$L/midrecord.out" 2>&1
check "peer closes in the middle of the request's record: the server reports an unexpected EOF" \
    "grep -q '^sent.*closed\$' '$L/midrecord.out' && wait_log '$S' '^conn $((count_before + 1)): FAILED reading the request: SSL_ERROR_SSL.*(unexpected eof|without close_notify)'" \
    "$L/midrecord.out" "$S"

# OpenSSL: a socket error is SSL_ERROR_SYSCALL, errno set, and a system-library entry queued.
timeout 20 $PY midresponse-client "$port" >"$L/midresponse.out" 2>&1
check "peer resets in the middle of a 50 MB response: the server reports the write failure" \
    "grep -q '^read' '$L/midresponse.out' && wait_log '$S' '^conn $((count_before + 2)): FAILED writing the response: SSL_ERROR_'" \
    "$L/midresponse.out" "$S"
check_known "... and reports it as OpenSSL does: SSL_ERROR_SYSCALL with errno ECONNRESET/EPIPE" \
    "grep -Eq '^conn $((count_before + 2)): FAILED writing the response: SSL_ERROR_SYSCALL \\(errno (104|32) ' '$S'" \
    "grep -q '^conn $((count_before + 2)): FAILED writing the response: SSL_ERROR_SSL .*internal error' '$S'" \
    "a socket error is SSL_ERROR_SSL with an \"internal error\" entry, errno not kept" "$S"

timeout 20 $PY garbage "$port" 1 >"$L/garbage.out" 2>&1
check "random bytes instead of a ClientHello: the server rejects the handshake" \
    "grep -q 'and closed' '$L/garbage.out' && wait_log '$S' '^conn $((count_before + 3)): FAILED handshake: SSL_ERROR_SSL'" \
    "$L/garbage.out" "$S"
timeout 20 $PY garbage "$port" 2 --header >"$L/garbage2.out" 2>&1
check "a handshake record header with a random body: the server rejects the handshake" \
    "grep -q 'and closed' '$L/garbage2.out' && wait_log '$S' '^conn $((count_before + 4)): FAILED handshake: SSL_ERROR_SSL'" \
    "$L/garbage2.out" "$S"

# Slowloris: one byte of a record, then nothing. Meanwhile a normal client is served.
timeout 30 $PY slowloris "$port" 8 >"$L/slowloris.out" 2>&1 &
slp=$!
pids="$pids $slp"
# The normal client connects once the slowloris one has (so the server numbers them in order).
i=0
while ! grep -q 'first byte sent' "$L/slowloris.out" 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
timeout 20 "$PEER" client localhost "$port" /123456 >"$L/during-slowloris.out" 2>&1
rc=$?
check "a normal client is served while a slowloris client holds a connection" \
    "[ $rc = 0 ] && grep -q '^OK TLSv1.3 alpn=- bytes=123456\$' '$L/during-slowloris.out' && alive $slp" \
    "$L/during-slowloris.out"
wait "$slp"
check "the slowloris connection ends with a clear error when the client gives up" \
    "grep -q 'still open' '$L/slowloris.out' && wait_log '$S' '^conn $((count_before + 5)): FAILED handshake: SSL_ERROR_SSL.*(unexpected eof|closed the connection during the handshake)'" \
    "$L/slowloris.out" "$S"

start slow -t 2 || fail "slow server start"
slowpid=$spid
timeout 30 $PY slowloris "$port" 20 >"$L/slowloris-t.out" 2>&1
check "server with a 2 s receive timeout (SO_RCVTIMEO) drops a slowloris client and says why" \
    "grep -q 'closed by server' '$L/slowloris-t.out' && wait_log '$L/slow.out' '^conn 1: FAILED handshake: SSL_ERROR_WANT_READ'" \
    "$L/slowloris-t.out" "$L/slow.out"
stop_server slow
spid=$MAIN
port=$MAINPORT

# Our client against a server that stops in the middle of a record.
rm -f "$L/midrecord-srv.port"
timeout 30 $PY midrecord-server "$L/midrecord-srv.port" >"$L/midrecord-srv.srv" 2>&1 &
sp=$!
pids="$pids $sp"
wait_log "$L/midrecord-srv.port" '^[0-9]+$'
timeout 20 "$PEER" client localhost "$(cat "$L/midrecord-srv.port" 2>/dev/null)" /1000 >"$L/midrecord-srv.out" 2>&1
rc=$?
wait "$sp"
check "our client: a server closing in the middle of a record is an unexpected EOF, not success" \
    "[ $rc = 1 ] && grep -Eq 'FAILED reading the response.*SSL_ERROR_SSL.*(unexpected eof|without close_notify)' '$L/midrecord-srv.out'" \
    "$L/midrecord-srv.out" "$L/midrecord-srv.srv"

# ---------------------------------------------------------------- the main server afterwards
timeout 20 "$PEER" client -2 localhost "$port" /4096 >"$L/after.out" 2>&1
check "the server still serves after all of the above" \
    "[ $? = 0 ] && grep -q '^OK TLSv1.2 alpn=- bytes=4096\$' '$L/after.out'" "$L/after.out" "$S"
i=0
while [ $i -lt 50 ]; do
    fds=$(ls "/proc/$SPROC/fd" | wc -l)
    threads=$(ls "/proc/$SPROC/task" | wc -l)
    [ "$fds" -le "$base_fds" ] && [ "$threads" -le "$base_threads" ] && break
    sleep 0.1
    i=$((i + 1))
done
check "no descriptor or thread leaked by the server ($fds fds / $threads threads, baseline $base_fds / $base_threads)" \
    "[ $fds -le $base_fds ] && [ $threads -le $base_threads ]" "$S"
check "no crash: the server ran throughout and every connection was reported" \
    "stop_server main && [ \$(grep -c '^conn ' '$S') -ge $((count_before + 6)) ]" "$S" "$L/main.err"

if [ -n "$xfailed" ]; then
    echo "known library bugs (XFAIL, not counted):$xfailed"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
