#!/bin/sh
# Checks the tests themselves: builds every tests/c/*.c against a real OpenSSL (3.5) with
# -DTEST_REAL_OPENSSL and runs it. A test that fails here expects something OpenSSL does
# not do. osslquic-only checks (extensions, the NULL-argument contract) are skipped there.
#
#   sh tests/c/check-openssl.sh /path/to/openssl-3.5-build   (holds include/, libcrypto.a
#                                                             and, for the QUIC tests, libssl.a)
#
# libssl.a is linked too when the build has it (test_blocking, test_poll need it; the BIO
# tests need only libcrypto). The QUIC tests read certificates from build/certs
# (`cargo run --release --example gencert -- build/certs`) or $OSSLQUIC_CERTS.
#
# One way to get such a build: the crates.io package openssl-src 300.5.x carries the source;
# `./Configure no-shared no-module no-tests no-apps no-docs no-legacy && make build_libs`.
# test_blocking and test_poll were checked this way against OpenSSL 3.5.5, a static build in
# /tmp/ossl35/src configured `no-shared no-module no-tests no-docs no-apps no-legacy no-comp
# no-zlib no-engine linux-x86_64`; all eleven programs of tests/c passed:
#   cargo run --release --example gencert -- build/certs
#   sh tests/c/check-openssl.sh /tmp/ossl35/src
# Environment: CHECK_TESTS="blocking poll" runs only these (names without test_ and .c);
# CONC_COUNT (default 200000) as in run-c.sh.
set -u
dir=${1:?usage: check-openssl.sh OPENSSL_BUILD_DIR}
cd "$(dirname "$0")/../.." || exit 2
out=${BUILD:-build}/c-openssl
mkdir -p "$out"
libs="$dir/libcrypto.a"
[ -f "$dir/libssl.a" ] && libs="$dir/libssl.a $libs"
pass=0 fail=0
for src in tests/c/*.c; do
    name=$(basename "$src" .c)
    if [ -n "${CHECK_TESTS:-}" ]; then
        case " $CHECK_TESTS " in *" ${name#test_} "* | *" $name "*) ;; *) continue ;; esac
    fi
    # shellcheck disable=SC2086
    if ${CC:-cc} -O1 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -DTEST_REAL_OPENSSL \
        -I"$dir/include" "$src" $libs -lpthread -ldl -o "$out/$name" &&
        CONC_COUNT=${CONC_COUNT:-200000} "$out/$name" >"$out/$name.log" 2>&1; then
        echo "PASS openssl/$name"; pass=$((pass + 1))
    else
        echo "FAIL openssl/$name"; sed 's/^/    | /' "$out/$name.log" 2>/dev/null | grep -v '| *ok '
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
