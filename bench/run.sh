#!/bin/sh
# `make bench`, datagram part: builds bench/dgram_bench.c against the release static library
# and prints the table. The Makefile builds the library first (`make lib`).
#   BENCH_SECS   timed seconds per figure (default 1.5)
#   BENCH_ROUNDS slices per figure, variants interleaved, best kept (default 5)
#   BENCH_ONLY   udp-send | udp-recv | pair (default: all)
set -eu
cd "$(dirname "$0")/.."

CC=${CC:-cc}
BUILD=${BUILD:-build}
LIB=${LIB_REL:-target/release/libosslquic.a}
LIBS=${LDLIBS:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}
OUT="$BUILD/bench"

if [ ! -f "$LIB" ]; then
    echo "bench: $LIB not found: run 'make lib' first" >&2
    exit 1
fi
mkdir -p "$OUT"
# -Werror is left out on purpose: a warning from a newer compiler must not hide the figures.
# shellcheck disable=SC2086 # LIBS is a list of flags
"$CC" -O2 -g -Wall -Wextra -std=c11 -D_GNU_SOURCE -Iinclude -o "$OUT/dgram_bench" \
    bench/dgram_bench.c "$LIB" $LIBS

commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
echo "osslquic datagram bench: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, kernel $(uname -r),"
echo "$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1))."
echo "Nothing is pinned; on a 2-core machine figures move by 10% or more from run to run,"
echo "and anything else running (load average now: $(cut -d' ' -f1-3 /proc/loadavg)) costs the"
echo "two-thread pair figures most."
echo "Mdgram/s = millions of 1200-byte datagrams per second; ratio = ours / reference."

# Every loop inside is bounded by time; the timeout is a last resort against a hung library.
timeout 300 "$OUT/dgram_bench" "${BENCH_ONLY:-all}"
sh bench/quic.sh
sh bench/tls.sh
sh bench/ddd.sh
