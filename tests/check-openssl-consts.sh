#!/bin/sh
# Every integer constant our OpenSSL headers define that OpenSSL 3.5's headers define too
# must have OpenSSL's value. The list is generated from our headers (object-like macros of
# include/openssl/*.h and include/osslquic.h, strings and empty ones left out), not kept by
# hand; one C program prints each value, built once against ours and once against OpenSSL.
# Left out on purpose: the version and configuration macros (osslquic says 3.5.0, the
# reference is a later 3.5 release; the OPENSSL_NO_* sets differ by design).
#   check-openssl-consts.sh [OPENSSL_PREFIX]   default /opt/openssl-3.5 (tests/openssl/fetch.sh)
set -u
cd "$(dirname "$0")/.."
: "${CC:=cc}" "${BUILD:=build}"
P=${1:-${OSSL_PREFIX:-/opt/openssl-3.5}}
O="$BUILD/consts"
mkdir -p "$O"
if [ ! -f "$P/include/openssl/ssl.h" ]; then
    echo "OpenSSL 3.5 headers not found in $P/include (tests/openssl/fetch.sh installs them)"
    echo "0 passed, 1 failed"
    exit 1
fi
HDRS="ssl.h quic.h bio.h err.h crypto.h x509.h x509_vfy.h pem.h evp.h tls1.h ssl3.h rand.h buffer.h asn1.h"
inc() { for h in $HDRS; do echo "#include <openssl/$h>"; done; }
inc >"$O/all.h"
# Object-like macros with a non-empty, non-string body: NAME BODY.
macros() {
    $CC -E -dM -I"$1" -x c "$O/all.h" | sed -n 's/^#define \([A-Za-z_][A-Za-z0-9_]*\) \(.*\)$/\1 \2/p' |
        grep -v '"' | grep -vE '^(OPENSSL_VERSION|OPENSSL_FULL_VERSION|OPENSSL_SHLIB|OPENSSL_RELEASE|OPENSSL_CONFIGURED_API|OPENSSL_API_|OPENSSL_NO_|OPENSSL_SYS_|OSSL_DEPRECATED|OPENSSL_FILE|OPENSSL_LINE|OSSLQUIC_)' |
        awk '{print $1}' | sort -u
}
macros include >"$O/ours.txt"
$CC -E -dM -I"$P/include" -x c "$O/all.h" | sed -n 's/^#define \([A-Za-z_][A-Za-z0-9_]*\) .*/\1/p' | sort -u >"$O/theirs.txt"
# Only names with the usual API prefixes (not libc's or the compiler's).
comm -12 "$O/ours.txt" "$O/theirs.txt" |
    grep -E '^(SSL|TLS|TLS1|SSL3|DTLS|BIO|ERR|X509|OSSL|OPENSSL|EVP|PEM|RAND|ASN1|CRYPTO|SSL_R|TLSEXT)_' >"$O/common.txt"
# A constant must be an integer constant expression on both sides: probe each one.
{
    inc
    while read -r n; do echo "enum { probe_$n = (int)(($n) != 0) };"; done <"$O/common.txt"
} >"$O/probe.c"
keep() {
    $CC -fsyntax-only -I"$1" "$O/probe.c" 2>&1 | sed -n 's/.*probe_\([A-Za-z0-9_]*\).*/\1/p' | sort -u
}
{ keep include; keep "$P/include"; } | sort -u >"$O/not-int.txt"
grep -vxF -f "$O/not-int.txt" "$O/common.txt" >"$O/list.txt"
{
    echo "#include <stdio.h>"
    inc
    echo "int main(void) {"
    while read -r n; do printf '    printf("%%s %%lld\\n", "%s", (long long)(%s));\n' "$n" "$n"; done <"$O/list.txt"
    echo "    return 0;"
    echo "}"
} >"$O/print.c"
$CC -w -Iinclude "$O/print.c" -o "$O/print-ours" && "$O/print-ours" >"$O/values-ours.txt" || { echo "0 passed, 1 failed"; exit 1; }
$CC -w -I"$P/include" "$O/print.c" -o "$O/print-ossl" && "$O/print-ossl" >"$O/values-ossl.txt" || { echo "0 passed, 1 failed"; exit 1; }
# What OpenSSL's headers bring in transitively, a program may use without including it
# (OpenSSL's demos use EXIT_FAILURE with no <stdlib.h>): a file including only ssl.h.
cat >"$O/transitive.c" <<'EOC'
#include <openssl/ssl.h>
int main(void)
{
    char s[] = "abc";
    FILE *f = stdout;
    time_t t = time(NULL);
    pthread_t self = pthread_self();
    va_list *ap = NULL;
    (void)self;
    (void)ap;
    (void)errno;
    return (f != NULL && t > 0 && strlen(s) == 3 && INT_MAX > 0 && UINT64_MAX > 0) ? EXIT_SUCCESS : EXIT_FAILURE;
}
EOC
incl_ok=1
$CC -std=c11 -Wall -Werror -Iinclude "$O/transitive.c" -fsyntax-only 2>"$O/transitive.log" || incl_ok=0
if [ $incl_ok = 0 ]; then
    echo "<openssl/ssl.h> does not bring what OpenSSL's does:"
    sed 's/^/  /' "$O/transitive.log" | head -n 10
fi
total=$(wc -l <"$O/list.txt")
bad=$(diff "$O/values-ours.txt" "$O/values-ossl.txt" | grep -c '^<')
if [ "$bad" != 0 ]; then
    echo "constants whose value differs from OpenSSL 3.5's (ours | OpenSSL's):"
    join "$O/values-ours.txt" "$O/values-ossl.txt" | awk '$2 != $3 {print "  " $1 ": " $2 " | " $3}'
fi
echo "$total constants compared ($(wc -l <"$O/not-int.txt") common names skipped as not integer constants on one side)"
[ $incl_ok = 1 ] || bad=$((bad + 1))
echo "$((total + 1 - bad)) passed, $bad failed"
[ "$bad" = 0 ]
