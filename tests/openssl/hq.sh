# The hq-interop part of tests/openssl/run.sh (sourced by it: uses its pass/fail/have,
# free_port, wait_bound, stop_server, $O, $L, $C, $T). OpenSSL's quic-hq-interop client and
# quic-hq-interop-server, built against osslquic and against OpenSSL, run against each other
# in both directions through the cases OpenSSL's run_endpoint.sh supports, with its
# environment (NO_ADDR_VALIDATE, FILEPREFIX, SSL_CERT_FILE, SSL_SESSION_FILE,
# SSL_CIPHER_SUITES):
#   handshake     one 1 KB file
#   transfer      files of 1 B, 1 KB, 100 KB, 1 MB and 10 MB on one connection
#   retry         the server validates the address with Retry (no NO_ADDR_VALIDATE)
#   resumption    two client runs sharing SSL_SESSION_FILE, one file each
#   chacha20      SSL_CIPHER_SUITES=TLS_CHACHA20_POLY1305_SHA256 on both ends
#   ipv6          the client connects to ::1
#   multiplexing  1,000 files of 100 bytes on one connection
# The client writes to /downloads/NAME (a fixed path): each run gets its own directory bound
# there inside a private mount namespace (unshare -m; needs root), with an empty /downloads
# created as the mount point.

H="$O/hq"
W="$H/www"
mkdir -p "$W"
if [ ! -f "$W/.made" ]; then
    head -c 1 /dev/urandom >"$W/f1b"
    for n in 1024 102400 1048576 10485760; do head -c $n /dev/urandom >"$W/f$n"; done
    i=1
    while [ $i -le 1000 ]; do
        head -c 100 /dev/urandom >"$W/m$i"
        i=$((i + 1))
    done
    touch "$W/.made"
fi
MULTI=$(i=1; while [ $i -le 1000 ]; do printf 'm%d ' $i; i=$((i + 1)); done)

hq_ns_ok=1
if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
    hq_ns_ok=0
else
    mkdir -p /downloads 2>/dev/null || hq_ns_ok=0
fi

# hq_client DIR HOST PORT FILES...: one client run into DIR (bound at /downloads); its rc.
hq_client() {
    dir=$1 host=$2 port=$3
    shift 3
    mkdir -p "$dir/downloads"
    printf '%s ' "$@" >"$dir/reqfile.txt"
    SSL_CERT_FILE="$C/ca.pem" SSL_CERT_DIR="$C" timeout -k 2 "$lim" unshare -m sh -c \
        'mount --bind "$1/downloads" /downloads && cd "$1" && exec "$2" "$3" "$4" reqfile.txt' \
        sh "$dir" "$O/$cb/quic-hq-interop" "$host" "$port" >>"$dir/client.out" 2>>"$dir/client.err"
}

# hq_check DIR FILES...: every file arrived whole; empty output if so, else what is wrong.
hq_check() {
    dir=$1
    shift
    bad=0
    first=""
    for f in "$@"; do
        if ! cmp -s "$W/$f" "$dir/downloads/$f"; then
            bad=$((bad + 1))
            [ -n "$first" ] || first="$f ($(wc -c <"$dir/downloads/$f" 2>/dev/null || echo missing) of $(wc -c <"$W/$f") bytes)"
        fi
    done
    [ $bad = 0 ] || echo "$bad of $# files wrong, first $first"
}

# hq_case CASE CLIENT_BUILD SERVER_BUILD
hq_case() {
    case=$1 cb=$2 sb=$3
    t="hq-$case-client-$cb--server-$sb"
    have "$O/$cb/quic-hq-interop" "$t" || return
    have "$O/$sb/quic-hq-interop-server" "$t" || return
    if [ $hq_ns_ok = 0 ]; then
        fail "$t" "needs root and unshare(1) to give the client its /downloads"
        return
    fi
    dir="$H/run/$t"
    rm -rf "$dir"
    mkdir -p "$dir"
    port=$(free_port udp)
    validate=yes
    [ "$case" = retry ] && validate=""
    suites=""
    [ "$case" = chacha20 ] && suites=TLS_CHACHA20_POLY1305_SHA256
    env ${validate:+NO_ADDR_VALIDATE=yes} ${suites:+SSL_CIPHER_SUITES=$suites} FILEPREFIX="$W" \
        timeout -k 2 120 "$O/$sb/quic-hq-interop-server" "$port" "$C/chain.pem" "$C/key.pem" \
        >"$dir/server.out" 2>"$dir/server.err" &
    spid=$!
    servers="$servers $spid"
    if ! wait_bound udp "$port" "$spid"; then
        fail "$t" "server did not bind port $port: $(tail -n 2 "$dir/server.err" | tr '\n' ' ')"
        stop_server "$spid"
        return
    fi
    host=localhost
    lim=$T
    rc=0
    case $case in
    handshake) files="f1024" ;;
    transfer | retry | chacha20) files="f1b f1024 f102400 f1048576 f10485760" ;;
    ipv6) host=::1 files="f1024 f1048576" ;;
    multiplexing) files=$MULTI lim=$((T * 3)) ;;
    resumption) files="f1024 f102400" ;;
    esac
    if [ "$case" = resumption ]; then
        # run_endpoint.sh: one client run per file, sharing the session file.
        for f in $files; do
            SSL_SESSION_FILE="$dir/session.db" hq_client "$dir" "$host" "$port" "$f" || rc=$?
        done
    else
        # shellcheck disable=SC2086
        [ -n "$suites" ] && export SSL_CIPHER_SUITES=$suites
        # shellcheck disable=SC2086
        hq_client "$dir" "$host" "$port" $files || rc=$?
        unset SSL_CIPHER_SUITES
    fi
    stop_server "$spid"
    # shellcheck disable=SC2086
    why=$(hq_check "$dir" $files)
    [ $rc = 0 ] || why="client rc $rc$([ $rc = 124 ] && echo " (timed out after $lim s)")${why:+, $why}"
    if [ "$case" = resumption ] && [ -z "$why" ] && [ ! -s "$dir/session.db" ]; then
        why="no session was written to SSL_SESSION_FILE"
    fi
    if [ -z "$why" ]; then
        pass "$t"
    else
        fail "$t" "$why: $(tail -n 2 "$dir/client.err" | tr '\n' ' ' | cut -c 1-200)"
    fi
}

for c in handshake transfer retry resumption chacha20 ipv6 multiplexing; do
    hq_case "$c" ossl ours
    hq_case "$c" ours ossl
done
