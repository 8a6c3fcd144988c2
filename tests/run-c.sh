#!/bin/sh
# Builds and runs the C tests in tests/c three ways:
#   c/NAME         against the release library ($LIB_REL), binaries in $BUILD/c/
#   c-asan/NAME    with ASan+UBSan against the debug library ($LIB_DBG), in $BUILD/c-asan/
#   valgrind/NAME  the release binaries under valgrind (memcheck, definite leaks are errors)
# Each run of a test binary is one test. Prints "PASS name" / "FAIL name" per run, the log of
# each failing run, and ends with exactly "N passed, N failed"; exits non-zero on any failure.
#
# Environment (the Makefile exports the first ones):
#   CC CFLAGS CPPFLAGS LDLIBS LIB_REL LIB_DBG BUILD   build settings
#   C_TESTS="err addr"      run only these (names without test_ and .c)
#   C_TEST_MODES="c c-asan valgrind"   which of the three ways to run
#   CONC_COUNT              datagrams for test_concurrency (its default: 1,000,000)
#   TEST_SCALE              fraction of connections for test_blocking/test_poll (valgrind: 0.1)
#   NO_VALGRIND=1           skip the valgrind runs
set -u

cd "$(dirname "$0")/.." || exit 2

CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE}
CPPFLAGS=${CPPFLAGS:--Iinclude}
LDLIBS=${LDLIBS:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}
LIB_REL=${LIB_REL:-target/release/libosslquic.a}
LIB_DBG=${LIB_DBG:-target/debug/libosslquic.a}
BUILD=${BUILD:-build}
MODES=${C_TEST_MODES:-c c-asan valgrind}
if [ "${NO_VALGRIND:-0}" = 1 ]; then
    MODES=$(echo "$MODES" | sed 's/valgrind//')
fi
case "$CPPFLAGS" in *-Iinclude*) ;; *) CPPFLAGS="$CPPFLAGS -Iinclude" ;; esac

SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer"
# Ours first; anything the caller set is appended (and so wins where it repeats an option).
export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

LOGDIR="$BUILD/c-logs"
mkdir -p "$BUILD/c" "$BUILD/c-asan" "$LOGDIR"

passed=0
failed=0

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() {
    echo "FAIL $1"
    failed=$((failed + 1))
    if [ -n "${2:-}" ] && [ -f "$2" ]; then
        sed 's/^/    | /' "$2" | tail -n 60
    fi
}

# The test sources: every tests/c/*.c (testutil.h is a header, so it is not among them).
TESTS=""
for src in tests/c/*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    if [ -n "${C_TESTS:-}" ]; then
        case " $C_TESTS " in *" ${name#test_} "* | *" $name "*) ;; *) continue ;; esac
    fi
    TESTS="$TESTS $name"
done

# Per-test run settings: the concurrency test moves 1,000,000 datagrams in release; the
# instrumented runs get fewer so the whole suite stays within a few minutes on 2 cores.
conc_count() {
    case "$1" in
    c) echo "${CONC_COUNT:-1000000}" ;;
    c-asan) echo "${CONC_COUNT_ASAN:-1000000}" ;;
    valgrind) echo "${CONC_COUNT_VALGRIND:-20000}" ;;
    esac
}

have_valgrind=1
command -v valgrind >/dev/null 2>&1 || have_valgrind=0

build_one() { # mode name -> 0 if built
    mode=$1 name=$2
    log="$LOGDIR/$mode-$name.build.log"
    case "$mode" in
    c) out="$BUILD/c/$name"
       # shellcheck disable=SC2086
       $CC $CFLAGS $CPPFLAGS "tests/c/$name.c" "$LIB_REL" $LDLIBS -o "$out" >"$log" 2>&1 ;;
    c-asan) out="$BUILD/c-asan/$name"
       # shellcheck disable=SC2086
       $CC $CFLAGS -O1 $SAN_FLAGS $CPPFLAGS "tests/c/$name.c" "$LIB_DBG" $LDLIBS -o "$out" >"$log" 2>&1 ;;
    esac
}

run_one() { # label log cmd...
    label=$1 log=$2
    shift 2
    if "$@" >"$log" 2>&1; then
        pass "$label"
    else
        echo "    (exit status $?)" >>"$log"
        fail "$label" "$log"
    fi
}

for mode in c c-asan; do
    case " $MODES " in *" $mode "*) ;; *) continue ;; esac
    lib=$LIB_REL
    [ "$mode" = c-asan ] && lib=$LIB_DBG
    for name in $TESTS; do
        if [ ! -f "$lib" ]; then
            echo "library $lib missing (run make lib lib-debug)" >"$LOGDIR/$mode-$name.build.log"
            fail "$mode/$name (build)" "$LOGDIR/$mode-$name.build.log"
            continue
        fi
        if ! build_one "$mode" "$name"; then
            fail "$mode/$name (build)" "$LOGDIR/$mode-$name.build.log"
            continue
        fi
        run_one "$mode/$name" "$LOGDIR/$mode-$name.log" \
            env CONC_COUNT="$(conc_count "$mode")" TEST_TIMEOUT=150 \
            timeout 180 "$BUILD/$mode/$name"
    done
done

case " $MODES " in
*" valgrind "*)
    if [ "$have_valgrind" = 0 ]; then
        echo "valgrind not installed: valgrind runs skipped"
    else
        for name in $TESTS; do
            [ -x "$BUILD/c/$name" ] || continue
            # QUIC packets come out of aws-lc's (before issue 16, ring's) hand-written SHA/HMAC/AES assembly, whose
            # results memcheck cannot track as defined (--track-origins points at its
            # stack buffers), so it flags every send of ciphertext. For the QUIC and TLS tests
            # (and test_biometh, which runs QUIC over custom BIOs, test_bounds, test_proxy, test_fleet, test_tickets, test_keyupdate, test_early_data, test_zerortt, test_groups, test_transport, test_datagram, test_session,
            # test_headers and test_fork) only, definedness tracking is off; invalid accesses and leaks stay
            # checked, and every other BIO test keeps the full checks.
            undef=""
            case "$name" in *quic* | *client_cert* | *blocking* | *poll* | *assist* | *domain* | *tls* | *fork* | *session* | *headers* | *bounds* | *proxy* | *fleet* | *tickets* | *keyupdate* | *early_data* | *zerortt* | *groups* | *transport* | *datagram* | test_biometh) undef="--undef-value-errors=no" ;; esac
            # test_fork's children and client processes end with _exit, leaving what they
            # inherited unfreed by design, and memcheck checks leaks in every process it
            # follows: for test_fork leaks are reported but not errors (the ASan run checks
            # the test process's leaks); invalid accesses stay errors in every process.
            leaks=definite
            case "$name" in *fork*) leaks=none ;; esac
            run_one "valgrind/$name" "$LOGDIR/valgrind-$name.log" \
                env CONC_COUNT="$(conc_count valgrind)" TEST_SCALE=0.1 TEST_TIMEOUT=170 \
                timeout 200 valgrind -q --error-exitcode=99 --leak-check=full \
                --errors-for-leak-kinds=$leaks --fair-sched=yes $undef "$BUILD/c/$name"
        done
    fi
    ;;
esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
