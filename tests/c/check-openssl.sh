#!/bin/sh
# Checks the tests themselves: builds every tests/c/*.c against a real OpenSSL (3.5) libcrypto
# with -DTEST_REAL_OPENSSL and runs it. A test that fails here expects something OpenSSL does
# not do. osslquic-only checks (extensions, the NULL-argument contract) are skipped there.
#
#   sh tests/c/check-openssl.sh /path/to/openssl-3.5-build   (holds include/ and libcrypto.a)
#
# One way to get such a build: the crates.io package openssl-src 300.5.x carries the source;
# `./Configure no-shared no-module no-tests no-apps no-docs no-legacy && make build_libs`.
set -u
dir=${1:?usage: check-openssl.sh OPENSSL_BUILD_DIR}
cd "$(dirname "$0")/../.." || exit 2
out=${BUILD:-build}/c-openssl
mkdir -p "$out"
pass=0 fail=0
for src in tests/c/*.c; do
    name=$(basename "$src" .c)
    if ${CC:-cc} -O1 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE -DTEST_REAL_OPENSSL \
        -I"$dir/include" "$src" "$dir/libcrypto.a" -lpthread -ldl -o "$out/$name" &&
        CONC_COUNT=${CONC_COUNT:-200000} "$out/$name" >"$out/$name.log" 2>&1; then
        echo "PASS openssl/$name"; pass=$((pass + 1))
    else
        echo "FAIL openssl/$name"; sed 's/^/    | /' "$out/$name.log" 2>/dev/null | grep -v '| *ok '
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
