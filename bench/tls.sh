#!/bin/sh
# `make bench`, TLS over TCP part (issue 5, deliverable 5): builds bench/tls_bench.c twice, against
# the release static library and against the system OpenSSL (-lssl -lcrypto), runs both in the
# same run, rounds interleaved, and prints ours beside OpenSSL with the ratio. The Makefile
# builds the library first (`make lib`); alone: `sh bench/tls.sh`.
#   BENCH_TLS_ROUNDS    rounds of each figure, ours and OpenSSL interleaved, best kept (default 3)
#   BENCH_TLS_HS_SECS   seconds per handshake round (default 1)
#   BENCH_TLS_BULK_MB   megabytes (10^6 bytes) of the bulk transfer (default 200)
# Every program runs under timeout(1); the program bounds its own socket waits too.
set -eu
cd "$(dirname "$0")/.."

CC=${CC:-cc}
BUILD=${BUILD:-build}
LIB=${LIB_REL:-target/release/libosslquic.a}
LIBS=${LDLIBS:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}
OUT="$BUILD/bench"
CERTS="$BUILD/certs"
ROUNDS=${BENCH_TLS_ROUNDS:-3}
HS_SECS=${BENCH_TLS_HS_SECS:-1}
BULK_MB=${BENCH_TLS_BULK_MB:-200}

if [ ! -f "$LIB" ]; then
    echo "tls bench: $LIB not found: run 'make lib' first" >&2
    exit 1
fi
mkdir -p "$OUT"
[ -f "$CERTS/ca.pem" ] || cargo run --release --quiet --example gencert -- "$CERTS"
# -Werror is left out on purpose: a warning from a newer compiler must not hide the figures.
# shellcheck disable=SC2086 # LIBS is a list of flags
"$CC" -O2 -g -Wall -Wextra -std=c11 -D_GNU_SOURCE -Iinclude -o "$OUT/tls_bench" bench/tls_bench.c "$LIB" $LIBS
# No -Iinclude: the system headers and libraries.
"$CC" -O2 -g -Wall -Wextra -std=c11 -D_GNU_SOURCE -o "$OUT/tls_bench_openssl" bench/tls_bench.c -lssl -lcrypto -lpthread
OSSL_VER=$(openssl version 2>/dev/null | cut -d' ' -f2)
OSSL="openssl ${OSSL_VER:-3.0}"

# kv LINE KEY: the value of KEY=... in a result line.
kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# better A B KEY: whichever line has the larger KEY (A if B is empty).
better() {
    if [ -z "$2" ]; then echo "$1"; return; fi
    if [ -z "$1" ]; then echo "$2"; return; fi
    if awk -v a="$(kv "$1" "$3")" -v b="$(kv "$2" "$3")" 'BEGIN { exit !(b > a) }'; then echo "$2"; else echo "$1"; fi
}
# row SECTION OURS_NAME OURS REF_NAME REF UNIT GOAL: one aligned line with the ratio.
row() {
    awk -v s="$1" -v on="$2" -v o="$3" -v rn="$4" -v r="$5" -v u="$6" -v g="$7" 'BEGIN {
        ratio = (o > 0 && r > 0) ? sprintf("%6.3fx", o / r) : "    n/a";
        line = sprintf("%-16s %-20s %8.1f %-5s | %-20s %8.1f %-5s | ratio %s", s, on, o, u, rn, r, u, ratio);
        if (g > 0) line = line sprintf(" (goal >= %.2fx) %s", g, (o > 0 && r > 0 && o / r >= g) ? "ok" : "MISSED");
        print line
    }'
}
fail() { echo "tls bench: $1 failed (see above)" >&2; exit 1; }
# run BINARY ARGS...: one run, bounded.
run() { b=$1; shift; timeout -k 5 30 "$OUT/$b" -c "$CERTS" "$@" || fail "$b $*"; }

hs13="" hs13r="" hs12="" hs12r="" bulk="" bulkr="" i=0
while [ "$i" -lt "$ROUNDS" ]; do
    hs13=$(better "$hs13" "$(run tls_bench hs "$HS_SECS" 1.3)" hps)
    hs13r=$(better "$hs13r" "$(run tls_bench_openssl hs "$HS_SECS" 1.3)" hps)
    hs12=$(better "$hs12" "$(run tls_bench hs "$HS_SECS" 1.2)" hps)
    hs12r=$(better "$hs12r" "$(run tls_bench_openssl hs "$HS_SECS" 1.2)" hps)
    bulk=$(better "$bulk" "$(run tls_bench bulk "$BULK_MB")" mbps)
    bulkr=$(better "$bulkr" "$(run tls_bench_openssl bulk "$BULK_MB")" mbps)
    i=$((i + 1))
done

commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
echo
echo "osslquic TLS bench: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, kernel $(uname -r),"
echo "$(nproc) cores, load average now: $(cut -d' ' -f1-3 /proc/loadavg). Nothing is pinned."
echo "One C source (bench/tls_bench.c, OpenSSL API only) linked against osslquic and against the"
echo "system $OSSL (libssl.so.3); server thread + client thread in one process, TCP 127.0.0.1,"
echo "ECDSA P-256 certificates from $CERTS, client verifying chain and name. Ratio = ours / $OSSL."
echo
echo "== Full handshakes per second: a new TCP connection each, no resumption (default ticket"
echo "   behaviour of each library); server: accept, write 1 byte, SSL_shutdown, close; client:"
echo "   connect, read the byte and the close_notify, close. Best of $ROUNDS x ${HS_SECS} s."
row "tls handshakes" "osslquic (TLS 1.3)" "$(kv "$hs13" hps)" "$OSSL" "$(kv "$hs13r" hps)" "/s" 1.0
row "tls handshakes" "osslquic (TLS 1.2)" "$(kv "$hs12" hps)" "$OSSL" "$(kv "$hs12r" hps)" "/s" 1.0
printf '%-16s %-20s %s, %s | %-20s %s, %s\n' "  cipher" osslquic "$(kv "$hs13" cipher)" "$(kv "$hs12" cipher)" "$OSSL" \
    "$(kv "$hs13r" cipher)" "$(kv "$hs12r" cipher)"
echo
echo "== Bulk: $BULK_MB MB (10^6 bytes) server to client on one TLS 1.3 connection, 64 KiB"
echo "   SSL_write_ex calls, every byte checked; MB/s from handshake done to close_notify read"
echo "   (client clock), best of $ROUNDS. CPU = the process (both threads) over that window."
row "tls bulk" osslquic "$(kv "$bulk" mbps)" "$OSSL" "$(kv "$bulkr" mbps)" MB/s 1.0
printf '%-16s %-20s %8.3f s %-24s | %-20s %8.3f s %s\n' "  CPU, cipher" osslquic "$(kv "$bulk" cpu)" \
    "$(kv "$bulk" cipher)" "$OSSL" "$(kv "$bulkr" cpu)" "$(kv "$bulkr" cipher)"
