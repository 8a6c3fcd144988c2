#!/bin/sh
# `make install` and linking like OpenSSL: installs into a temporary prefix (and once more
# through DESTDIR), then builds a client and a server from their sources against the installed
# copy only, through pkg-config: the client shared (found through its RUNPATH, the installed
# lib directory, with LD_LIBRARY_PATH unset) and static (`pkg-config --static` with
# -Wl,-Bstatic), the server static. The shared client talks to the server on loopback and the
# bytes are checked; then the static client does the same. Also checks the SONAME and that the
# shared library exports only the functions include/osslquic.h declares.
#
# The programs are OpenSSL's guide demos (demos/guide/quic-{server,client}-block.c, unchanged)
# when an OpenSSL 3.5 source tree is at /var/tmp/openssl-3.5-src/openssl-3.5.*/ (the openssl
# suite fetches it), else our own c-demos/quic-{server,client}.c; the output says which.
# Every wait is bounded; the temporary directories and the server are removed at exit.
# Prints `N passed, N failed` last.
set -u
cd "$(dirname "$0")/.."
: "${CC:=cc}" "${BUILD:=build}"
ROOT=$(pwd)
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1${2:+: $2}"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

P=$(mktemp -d /tmp/osslquic-prefix.XXXXXX)
D=$(mktemp -d /tmp/osslquic-destdir.XXXXXX)
W=$(mktemp -d /tmp/osslquic-work.XXXXXX)
spid=""
cleanup() {
    [ -n "$spid" ] && { kill -KILL "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
    rm -rf "$P" "$D" "$W"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- make install
if make --no-print-directory install PREFIX="$P" >"$W/install.log" 2>&1; then
    pass "make install PREFIX=$P"
else
    fail "make install PREFIX=$P" "$(tail -n 3 "$W/install.log" | tr '\n' ' ')"
    finish
fi
missing=""
for f in $(cd include && find . -name '*.h'); do
    cmp -s "include/$f" "$P/include/$f" || missing="$missing include/$f"
done
for f in lib/libosslquic.a lib/libosslquic.so lib/pkgconfig/osslquic.pc; do
    [ -e "$P/$f" ] || missing="$missing $f"
done
chain="$(readlink "$P/lib/libosslquic.so") -> $(readlink "$P/lib/libosslquic.so.0")"
if [ -z "$missing" ] && [ "$chain" = "libosslquic.so.0 -> libosslquic.so.0.1.0" ] &&
    [ -f "$P/lib/libosslquic.so.0.1.0" ] && [ ! -L "$P/lib/libosslquic.so.0.1.0" ]; then
    pass "layout" "headers, libosslquic.a, libosslquic.so -> $chain, pkgconfig/osslquic.pc"
else
    fail "layout" "missing or different:${missing:- none}; chain libosslquic.so -> $chain"
fi

# DESTDIR stages the same tree under another root; the .pc still names the final prefix.
if make --no-print-directory install DESTDIR="$D" PREFIX=/opt/osslquic >"$W/install-destdir.log" 2>&1 &&
    [ -f "$D/opt/osslquic/lib/libosslquic.so.0.1.0" ] && [ -f "$D/opt/osslquic/include/openssl/ssl.h" ] &&
    grep -qx 'prefix=/opt/osslquic' "$D/opt/osslquic/lib/pkgconfig/osslquic.pc" &&
    [ -z "$(find "$D" -mindepth 1 -maxdepth 1 ! -name opt)" ]; then
    pass "make install DESTDIR=... PREFIX=/opt/osslquic"
else
    fail "make install DESTDIR=... PREFIX=/opt/osslquic" "$(tail -n 3 "$W/install-destdir.log" | tr '\n' ' ')"
fi
rm -rf "$D"

# ---- pkg-config
export PKG_CONFIG_PATH="$P/lib/pkgconfig"
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
# pkgconf ends its output with a space; echo drops it.
cflags=$(echo $(pkg-config --cflags osslquic))
libs=$(echo $(pkg-config --libs osslquic))
slibs=$(echo $(pkg-config --static --libs osslquic))
ldlibs=$(sed -n 's/^LDLIBS *:= *//p' Makefile)
if [ "$cflags" = "-I$P/include" ] && [ "$libs" = "-L$P/lib -losslquic" ] &&
    [ "$slibs" = "-L$P/lib -losslquic -Wl,-Bdynamic $ldlibs" ]; then
    pass "pkg-config" "--cflags '$cflags', --libs '$libs', --static --libs adds '-Wl,-Bdynamic $ldlibs'"
else
    fail "pkg-config" "--cflags '$cflags', --libs '$libs', --static --libs '$slibs' (LDLIBS '$ldlibs')"
fi

# ---- the shared library: SONAME and exports
so="$P/lib/libosslquic.so.0.1.0"
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" = libosslquic.so.0 ]; then pass "SONAME" "$soname"; else fail "SONAME" "'$soname'"; fi

# Every defined dynamic symbol must be a function that the installed osslquic.h declares, and
# the header's functions must all be there.
nm -D --defined-only "$so" >"$W/nm.txt"
awk '{print $3}' "$W/nm.txt" | sort -u >"$W/exported"
awk '$2 != "T" {print $2, $3}' "$W/nm.txt" >"$W/not-text"
grep -E '^(_ZN|_R|rust_|__rust|__rdl|__rg)' "$W/exported" >"$W/rust" || true
# Declared names: the identifier before "(" at the start of a declaration (cbindgen writes
# one declaration per line start; a function returning a function pointer reads
# `int (*NAME(args))(..)`).
sed -n -E -e 's/^[A-Za-z_][A-Za-z0-9_ *]*[ *]\(\*([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/p' \
    -e 's/^[A-Za-z_][A-Za-z0-9_ *]*[ *]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/p' "$P/include/osslquic.h" |
    grep -v -x -E 'typedef|struct|union|enum' | sort -u >"$W/declared"
comm -23 "$W/exported" "$W/declared" >"$W/extra"
comm -13 "$W/exported" "$W/declared" >"$W/absent"
n=$(wc -l <"$W/exported")
if [ -s "$W/rust" ] || [ -s "$W/extra" ] || [ -s "$W/not-text" ]; then
    fail "exports" "$n exported; Rust symbols: $(head -n 5 "$W/rust" | tr '\n' ' '); not in osslquic.h: $(head -n 5 "$W/extra" | tr '\n' ' '); not functions: $(head -n 5 "$W/not-text" | tr '\n' ' ')"
elif [ -s "$W/absent" ]; then
    fail "exports" "declared in osslquic.h but not exported: $(head -n 5 "$W/absent" | tr '\n' ' ')"
elif [ "$n" -lt 100 ]; then
    fail "exports" "only $n symbols"
else
    pass "exports" "$n functions, exactly those osslquic.h declares; no Rust symbols"
fi

# ---- build programs against the installed copy only
# The guide demos need OpenSSL's full header set (openssl/quic.h, ...), which is being added
# elsewhere: when they do not compile against the installed headers, say why and use ours.
kind=ours
src=$(ls -d /var/tmp/openssl-3.5-src/openssl-3.5.*/demos/guide 2>/dev/null | tail -n 1)
if [ -n "$src" ] && [ -f "$src/quic-client-block.c" ] && [ -f "$src/quic-server-block.c" ]; then
    cp "$src/quic-client-block.c" "$W/client.c"
    cp "$src/quic-server-block.c" "$W/server.c"
    # shellcheck disable=SC2086
    if (cd "$W" && $CC -std=gnu11 $cflags -c client.c -o client.o && $CC -std=gnu11 $cflags -c server.c -o server.o) >"$W/guide.log" 2>&1; then
        kind=guide
        echo "programs: OpenSSL's guide demos from $src (quic-client-block, quic-server-block)"
    else
        echo "programs: OpenSSL's guide demos in $src do not compile against the installed headers ($(grep -m 1 'error' "$W/guide.log")): our c-demos/quic-client.c and quic-server.c instead"
    fi
else
    echo "programs: no OpenSSL 3.5 source tree at /var/tmp/openssl-3.5-src: our c-demos/quic-client.c and quic-server.c instead"
fi
if [ $kind = ours ]; then
    cp c-demos/quic-client.c "$W/client.c"
    cp c-demos/quic-server.c "$W/server.c"
fi
[ -f "$BUILD/certs/ca.pem" ] || cargo run --release --quiet --example gencert -- "$BUILD/certs" >/dev/null 2>&1
C="$ROOT/$BUILD/certs"

# build NAME SRC HOW: from inside $W, so that only the installed headers can be found.
build() {
    name=$1 srcf=$2 how=$3
    # shellcheck disable=SC2086
    case $how in
    shared) (cd "$W" && $CC -std=gnu11 -g -O2 -Wall $cflags "$srcf" -Wl,-rpath,"$P/lib" $libs -o "$name") ;;
    static) (cd "$W" && $CC -std=gnu11 -g -O2 -Wall $cflags "$srcf" -Wl,-Bstatic $slibs -o "$name") ;;
    esac >"$W/$name.log" 2>&1 || {
        fail "build $name ($how)" "$(grep -m 3 -E 'error|undefined' "$W/$name.log" | tr '\n' ' ')"
        return 1
    }
    # shellcheck disable=SC2086
    stray=$(cd "$W" && $CC $cflags -M "$srcf" 2>/dev/null | tr ' \\' '\n\n' | grep -E 'openssl/|osslquic' | grep -v "^$P/include/" | sort -u | tr '\n' ' ')
    needed=$(readelf -d "$W/$name" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    if [ -n "$stray" ]; then
        fail "build $name ($how)" "headers not from $P/include: $stray"
        return 1
    fi
    case $how in
    shared)
        resolved=$(env -u LD_LIBRARY_PATH ldd "$W/$name" | sed -n 's/.*libosslquic.so.0 => \([^ ]*\).*/\1/p')
        if [ "$resolved" = "$P/lib/libosslquic.so.0" ]; then
            pass "build $name (shared)" "NEEDED $needed; libosslquic.so.0 => $resolved through RUNPATH"
        else
            fail "build $name (shared)" "libosslquic.so.0 resolves to '$resolved'; NEEDED $needed"
            return 1
        fi
        ;;
    static)
        case " $needed" in
        *libosslquic*) fail "build $name (static)" "still needs the shared library: NEEDED $needed"; return 1 ;;
        *) pass "build $name (static)" "NEEDED $needed; $(du -k "$W/$name" | cut -f1) KiB" ;;
        esac
        ;;
    esac
}
build client-shared client.c shared
build client-static client.c static
build server-static server.c static
[ -x "$W/server-static" ] || finish

# ---- run: the server (static) on loopback, each client against it
free_port() {
    python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# start_server: sets spid and port; 0 once the server's UDP socket is bound (up to 10 s).
start_server() {
    if [ $kind = guide ]; then
        port=$(free_port)
        timeout -k 2 120 "$W/server-static" "$port" "$C/chain.pem" "$C/key.pem" >"$W/server.log" 2>&1 &
    else
        port=""
        timeout -k 2 120 "$W/server-static" --idle-exit 60 "$C/chain.pem" "$C/key.pem" 0 >"$W/server.out" 2>"$W/server.log" &
    fi
    spid=$!
    i=0
    while [ $i -lt 100 ]; do
        kill -0 "$spid" 2>/dev/null || return 1
        if [ $kind = ours ]; then
            port=$(sed -n 's/^listening on //p' "$W/server.out")
            [ -n "$port" ] && return 0
        elif ss -ulnH "sport = :$port" 2>/dev/null | grep -q .; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
stop_server() {
    kill -TERM "$spid" 2>/dev/null
    i=0
    while kill -0 "$spid" 2>/dev/null && [ $i -lt 30 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -KILL "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
    spid=""
}

# The guide client sends this request, prints what comes back, then a newline; the guide
# server echoes. Our client fetches /100000 and checks every byte itself.
printf 'GET / HTTP/1.0\r\nConnection: close\r\nHost: localhost\r\n\r\n\n' >"$W/expect"
exchange() {
    name=$1
    [ -x "$W/$name" ] || return 0
    if ! start_server; then
        fail "run $name" "server did not bind: $(tail -n 2 "$W/server.log" | tr '\n' ' ')"
        stop_server
        return
    fi
    if [ $kind = guide ]; then
        env -u LD_LIBRARY_PATH SSL_CERT_FILE="$C/ca.pem" timeout -k 2 30 "$W/$name" localhost "$port" >"$W/$name.out" 2>"$W/$name.err"
        rc=$?
        if [ $rc = 0 ] && cmp -s "$W/$name.out" "$W/expect"; then
            pass "run $name" "the $(($(wc -c <"$W/expect") - 1))-byte request came back exactly through the server on 127.0.0.1:$port"
        else
            fail "run $name" "rc $rc, $(wc -c <"$W/$name.out") bytes out ($(cmp -s "$W/$name.out" "$W/expect" && echo exact || echo wrong)): $(tail -n 2 "$W/$name.out" "$W/$name.err" | tr '\n' ' ' | cut -c 1-200)"
        fi
    else
        env -u LD_LIBRARY_PATH timeout -k 2 30 "$W/$name" -c "$C/ca.pem" -t 20 127.0.0.1 "$port" /100000 >"$W/$name.out" 2>"$W/$name.err"
        rc=$?
        if [ $rc = 0 ] && grep -q '^quic-client: 1 requests ok, 100000 bytes' "$W/$name.out"; then
            pass "run $name" "100000 bytes fetched and checked from the server on 127.0.0.1:$port"
        else
            fail "run $name" "rc $rc: $(tail -n 2 "$W/$name.out" "$W/$name.err" | tr '\n' ' ' | cut -c 1-200)"
        fi
    fi
    stop_server
}
exchange client-shared
exchange client-static

finish
