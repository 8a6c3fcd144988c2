#!/bin/sh
# Builds the DDD server demos (c-demos/ddd-*.c) and their client against the release library:
#   build/ddd/<demo>-tls        TLS over TCP (accept(2), SSL_new + SSL_set_fd)
#   build/ddd/<demo>-listener   TLS through the listener API (-DUSE_LISTENER)
#   build/ddd/<demo>-quic       QUIC (-DUSE_QUIC)
#   build/ddd/ddd-client-{tls,quic}
# for demo in ddd-mt ddd-fork ddd-prefork ddd-async-pollable ddd-async-nonpollable and
# ddd-async-unaddressed (ddd-async-nonpollable.c built with -DADDRESSED=0), each one whose
# source exists (the async ones also need libuv, found with pkg-config). Every demo links
# c-demos/common.c, the async ones also c-demos/async-common.c, each compiled per variant.
# A variant that cannot be built because the library lacks a call it needs (the QUIC fork and
# prefork calls) is listed in build/ddd/missing with the reason, and not built. A compiler
# error is listed there too; the other binaries are still built and the script exits 1.
# Prints one line per binary built.
#   build-ddd.sh [--quiet]
#   build-ddd.sh --count-quic   builds nothing: prints, per demo source, how many lines the
#                               QUIC build adds and drops against the TLS and the listener
#                               builds (the C preprocessor keeps or drops the #if blocks,
#                               includes and comments left out, blank lines ignored)
set -eu
cd "$(dirname "$0")/.."
: "${CC:=cc}" "${BUILD:=build}" "${LIB_REL:=target/release/libosslquic.a}"
: "${LDLIBS:=-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}"
O="$BUILD/ddd"
mkdir -p "$O"
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1

# variant_text SRC FLAGS...: SRC as the compiler sees it for one variant, directives only.
variant_text() {
    src=$1
    shift
    grep -v '^[[:space:]]*#[[:space:]]*include' "$src" |
        ${CPP:-cpp} -P -fdirectives-only -undef -nostdinc "$@" - 2>/dev/null |
        grep -v '^#define USE_\|^[[:space:]]*$' || true
}
if [ "${1:-}" = "--count-quic" ]; then
    printf '%-30s %7s %16s %16s\n' "source" "lines" "TLS -> QUIC" "listener -> QUIC"
    for f in c-demos/common.c c-demos/async-common.c c-demos/ddd-mt.c c-demos/ddd-fork.c \
        c-demos/ddd-prefork.c c-demos/ddd-async-pollable.c c-demos/ddd-async-nonpollable.c; do
        [ -f "$f" ] || continue
        variant_text "$f" >"$O/count-tls.c"
        variant_text "$f" -DUSE_LISTENER >"$O/count-listener.c"
        variant_text "$f" -DUSE_QUIC >"$O/count-quic.c"
        a1=$(diff "$O/count-tls.c" "$O/count-quic.c" | grep -c '^>' || true)
        d1=$(diff "$O/count-tls.c" "$O/count-quic.c" | grep -c '^<' || true)
        a2=$(diff "$O/count-listener.c" "$O/count-quic.c" | grep -c '^>' || true)
        d2=$(diff "$O/count-listener.c" "$O/count-quic.c" | grep -c '^<' || true)
        printf '%-30s %7s %16s %16s\n' "$f" "$(wc -l <"$O/count-quic.c")" "+$a1 -$d1" "+$a2 -$d2"
    done
    rm -f "$O"/count-*.c
    exit 0
fi
CFL="-O2 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -Iinclude -Ic-demos"

if [ ! -f "$LIB_REL" ]; then
    echo "build-ddd: $LIB_REL not found: run 'make lib' first" >&2
    exit 1
fi

# has FUNCTION: 1 if the library exports FUNCTION and the header declares it.
has() {
    printf '#include <openssl/ssl.h>\nint main(void) { void *f = (void *)%s; return f == 0; }\n' "$1" >"$O/probe.$$.c"
    # shellcheck disable=SC2086
    $CC -std=c11 -D_GNU_SOURCE -Iinclude "$O/probe.$$.c" "$LIB_REL" $LDLIBS -o "$O/probe.$$" >/dev/null 2>&1
}

defs=""
has SSL_get_peer_addr && defs="$defs -DHAVE_SSL_GET_PEER_ADDR"
fork_api=1
for f in OSSLQUIC_fork_connection OSSLQUIC_prefork OSSLQUIC_prefork_worker OSSLQUIC_get_engine_stats; do
    has "$f" || { fork_api=0; missing_fn="$f"; }
done
: >"$O/missing.$$"

uv_flags=""
uv_libs=""
have_uv=0
if pkg-config --exists libuv 2>/dev/null; then
    have_uv=1
    uv_flags=$(pkg-config --cflags libuv)
    uv_libs=$(pkg-config --libs libuv)
fi

trap 'rm -f "$O"/*.$$' EXIT
# shellcheck disable=SC2086 # flag lists
$CC $CFL $defs -c c-demos/common.c -o "$O/common-tls.o.$$"
# shellcheck disable=SC2086
$CC $CFL $defs -DUSE_LISTENER -c c-demos/common.c -o "$O/common-listener.o.$$"
# shellcheck disable=SC2086
$CC $CFL $defs -DUSE_QUIC -c c-demos/common.c -o "$O/common-quic.o.$$"

built() {
    [ "$quiet" = 1 ] || echo "build-ddd: $1"
}

# build OUT SRC VARIANT [EXTRA FLAGS...]
build() {
    out=$1 src=$2 variant=$3
    shift 3
    case $variant in
    tls) vdef="" ;;
    listener) vdef="-DUSE_LISTENER" ;;
    quic) vdef="-DUSE_QUIC" ;;
    esac
    # Built under a temporary name and renamed: a test running meanwhile (another build of
    # the same tree) keeps a complete binary.
    # shellcheck disable=SC2086
    if $CC $CFL $defs $vdef "$@" "$src" "$O/common-$variant.o.$$" "$LIB_REL" $LDLIBS $EXTRA_LIBS -o "$O/$out.$$"; then
        mv -f "$O/$out.$$" "$O/$out"
        built "$O/$out"
    else
        rm -f "$O/$out.$$" "$O/$out"
        echo "$out: compiler error (above)" >>"$O/missing.$$"
        status=1
    fi
}

EXTRA_LIBS=""
status=0
for variant in tls quic; do
    build "ddd-client-$variant" c-demos/ddd-client.c "$variant"
done

for demo in ddd-mt ddd-fork ddd-prefork; do
    [ -f "c-demos/$demo.c" ] || continue
    for variant in tls listener quic; do
        if [ "$variant" = quic ] && [ "$fork_api" = 0 ] && [ "$demo" != ddd-mt ]; then
            echo "$demo-quic: the library has no $missing_fn yet" >>"$O/missing.$$"
            rm -f "$O/$demo-quic"
            continue
        fi
        build "$demo-$variant" "c-demos/$demo.c" "$variant"
    done
done

# The async demos' shared part (no libuv in it), once per variant.
if [ "$have_uv" = 1 ]; then
    for variant in tls listener quic; do
        case $variant in
        tls) vdef="" ;;
        listener) vdef="-DUSE_LISTENER" ;;
        quic) vdef="-DUSE_QUIC" ;;
        esac
        # shellcheck disable=SC2086
        if ! $CC $CFL $defs $vdef -c c-demos/async-common.c -o "$O/async-common-$variant.o.$$"; then
            echo "async-common ($variant): compiler error (above)" >>"$O/missing.$$"
            status=1
        fi
    done
fi
for demo in ddd-async-pollable ddd-async-nonpollable ddd-async-unaddressed; do
    src="c-demos/$demo.c"
    extra=""
    if [ "$demo" = ddd-async-unaddressed ]; then
        src=c-demos/ddd-async-nonpollable.c
        extra="-DADDRESSED=0"
    fi
    [ -f "$src" ] || continue
    if [ "$have_uv" = 0 ]; then
        echo "$demo: libuv not found (pkg-config libuv; tests/setup.sh installs libuv1-dev)" >>"$O/missing.$$"
        continue
    fi
    EXTRA_LIBS="$uv_libs"
    for variant in tls listener quic; do
        # shellcheck disable=SC2086
        build "$demo-$variant" "$src" "$variant" $uv_flags $extra "$O/async-common-$variant.o.$$"
    done
    EXTRA_LIBS=""
done
rm -f "$O/probe.$$" "$O/probe.$$.c"
mv -f "$O/missing.$$" "$O/missing"
if [ -s "$O/missing" ] && [ "$quiet" = 0 ]; then
    sed 's/^/build-ddd: not built: /' "$O/missing"
fi
exit $status
