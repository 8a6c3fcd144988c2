#!/bin/sh
# `make bench`, QUIC part: builds bench/quic_*.c against the release static library and the
# quinn reference (examples/quinn_bench.rs), runs both in the same run, prints ours beside the
# reference with the ratio. The Makefile builds the library first (`make lib`).
#   BENCH_QUIC_ROUNDS      rounds of the bulk and handshake figures, ours and the reference
#                          interleaved, best kept (default 5); the paired handshake figure runs
#                          ROUNDS x BENCH_QUIC_HS_SECS seconds of each
#   BENCH_QUIC_HS_SECS     seconds per handshake round (default 1)
#   BENCH_QUIC_BULK_BYTES  bytes of the bulk transfer (default 200000000)
#   BENCH_QUIC_IDLE_CONNS  idle connections (default 10000; fewer if they do not fit the setup cap)
#   BENCH_QUIC_IDLE_SECS   idle measurement window (default 10); the idle run also gives the
#                          memory per idle connection (quinn-proto's: `quinn_bench memory`)
#   BENCH_QUIC_MT_SECS     timed seconds per run of the threaded vs single-thread figure (default 5)
#   BENCH_QUIC_MT_ROUNDS   runs of each server mode, interleaved (default 2)
#   BENCH_QUIC_MT_CONNS    concurrent client connections (default 64)
#   BENCH_QUIC_MT_CLIENT   sockets (one UDP socket per connection, default) | one (all on one
#                          client listener's socket, SSL_new_from_listener)
#   BENCH_QUIC_MT_WORKERS  0 (default): a thread per connection serves its streams; N > 0: the
#                          connection threads hand streams to a pool of N threads
#   BENCH_QUIC_ONLY        bulk | handshakes | idle | mt (default: all)
#   QUINN_BENCH            a quinn_bench binary to use as the reference (default: built here),
#                          e.g. an earlier build's beside its LIB_REL, for before/after figures;
#                          the paired handshake figure runs the handshakes_paired beside it
# (Own names, not BENCH_ONLY/BENCH_ROUNDS: those mean other things to bench/dgram_bench.c.)
# Every program runs under timeout(1), which ends its whole process group (the forked server
# or listener too) if it ever hangs; the programs bound every wait of their own.
set -eu
cd "$(dirname "$0")/.."

CC=${CC:-cc}
BUILD=${BUILD:-build}
LIB=${LIB_REL:-target/release/libosslquic.a}
LIBS=${LDLIBS:--lgcc_s -lutil -lrt -lpthread -lm -ldl -lc}
OUT="$BUILD/bench"
CERTS="$BUILD/certs"
ROUNDS=${BENCH_QUIC_ROUNDS:-5}
HS_SECS=${BENCH_QUIC_HS_SECS:-1}
BULK=${BENCH_QUIC_BULK_BYTES:-200000000}
IDLE_N=${BENCH_QUIC_IDLE_CONNS:-10000}
IDLE_SECS=${BENCH_QUIC_IDLE_SECS:-10}
MT_SECS=${BENCH_QUIC_MT_SECS:-5}
MT_ROUNDS=${BENCH_QUIC_MT_ROUNDS:-2}
MT_CONNS=${BENCH_QUIC_MT_CONNS:-64}
MT_CLIENT=${BENCH_QUIC_MT_CLIENT:-sockets}
MT_WORKERS=${BENCH_QUIC_MT_WORKERS:-0}
ONLY=${BENCH_QUIC_ONLY:-all}
QB=${QUINN_BENCH:-target/release/examples/quinn_bench}
# The paired handshake figure's program (it links the osslquic it measures): beside QB's.
HP=$(dirname "$QB")/handshakes_paired

if [ ! -f "$LIB" ]; then
    echo "bench: $LIB not found: run 'make lib' first" >&2
    exit 1
fi
mkdir -p "$OUT"
[ -f "$CERTS/ca.pem" ] || cargo run --release --quiet --example gencert -- "$CERTS"
# -Werror is left out on purpose: a warning from a newer compiler must not hide the figures.
for p in quic_bulk quic_handshakes quic_idle quic_mt; do
    # shellcheck disable=SC2086 # LIBS is a list of flags
    "$CC" -O2 -g -Wall -Wextra -std=c11 -D_GNU_SOURCE -Iinclude -o "$OUT/$p" "bench/$p.c" "$LIB" $LIBS
done
# The reference is not needed by the mt figure (it compares two servers of ours).
[ "$ONLY" = mt ] || [ -n "${QUINN_BENCH:-}" ] ||
    cargo build --release --quiet --example quinn_bench --example handshakes_paired

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
fail() { echo "quic bench: $1 failed (see above)" >&2; exit 1; }

commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
echo
echo "osslquic QUIC bench: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, kernel $(uname -r),"
echo "$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)), load average now:"
echo "$(cut -d' ' -f1-3 /proc/loadavg). Nothing is pinned; other load moves every figure. Ratio = ours / reference."
echo "Reference: quinn 0.11 / quinn-proto 0.11 with the same certificates, ALPN and transport settings."

if [ "$ONLY" = all ] || [ "$ONLY" = bulk ]; then
    ours="" ref="" i=0
    while [ "$i" -lt "$ROUNDS" ]; do
        o=$(timeout -k 5 90 "$OUT/quic_bulk" -n "$BULK" -c "$CERTS") || fail "quic_bulk"
        r=$(timeout -k 5 90 "$QB" --certs "$CERTS" bulk "$BULK") || fail "quinn_bench bulk"
        ours=$(better "$ours" "$o" mbps)
        ref=$(better "$ref" "$r" mbps)
        i=$((i + 1))
    done
    echo
    echo "== Bulk: $BULK bytes on one stream, server process to client process, UDP 127.0.0.1;"
    echo "   MB/s = 10^6 bytes / s from handshake done to FIN read (client clock), best of $ROUNDS;"
    echo "   MB/cs = MB per CPU-second of client + server (getrusage over each side's transfer)"
    row "quic bulk" osslquic "$(kv "$ours" mbps)" quinn "$(kv "$ref" mbps)" MB/s 1.0
    # CPU efficiency of the same runs: less sensitive to other load than the wall clock.
    eff() { awk -v b="$BULK" -v c="$(kv "$1" client_cpu)" -v s="$(kv "$1" server_cpu)" 'BEGIN { printf("%.1f", b / 1e6 / (c + s)) }'; }
    row "  per CPU-second" "osslquic" "$(eff "$ours")" quinn "$(eff "$ref")" MB/cs 0
    printf '%-16s %-20s client %.3f s, server %.3f s | quinn client %.3f s, server %.3f s\n' "  CPU (same run)" osslquic \
        "$(kv "$ours" client_cpu)" "$(kv "$ours" server_cpu)" "$(kv "$ref" client_cpu)" "$(kv "$ref" server_cpu)"
fi

if [ "$ONLY" = all ] || [ "$ONLY" = handshakes ]; then
    # The goal's figure: both stacks in one process taking turns every 50 ms
    # (examples/handshakes_paired.rs), ROUNDS x HS_SECS seconds each.
    each=$(awk -v r="$ROUNDS" -v s="$HS_SECS" 'BEGIN { print r * s }')
    # Beside a QUINN_BENCH from before it existed there is none: its row then reads n/a.
    paired=""
    if [ -x "$HP" ] || [ -z "${QUINN_BENCH:-}" ]; then
        paired=$(timeout -k 5 "$(awk -v e="$each" 'BEGIN { print int(60 + 4 * e) }')" "$HP" --certs "$CERTS" \
            "$each" 0.05) || fail "handshakes_paired"
    fi
    po=$(printf '%s\n' "$paired" | grep osslquic-pair || true) pr=$(printf '%s\n' "$paired" | grep quinn-proto || true)
    pair="" udp="" ref="" i=0
    while [ "$i" -lt "$ROUNDS" ]; do
        o=$(timeout -k 5 60 "$OUT/quic_handshakes" -m pair -s "$HS_SECS" -c "$CERTS") || fail "quic_handshakes"
        r=$(timeout -k 5 60 "$QB" --certs "$CERTS" handshakes "$HS_SECS") || fail "quinn_bench handshakes"
        u=$(timeout -k 5 60 "$OUT/quic_handshakes" -m udp -s "$HS_SECS" -c "$CERTS") || fail "quic_handshakes -m udp"
        pair=$(better "$pair" "$o" hps)
        ref=$(better "$ref" "$r" hps)
        udp=$(better "$udp" "$u" hps)
        i=$((i + 1))
    done
    echo
    echo "== Full handshakes per second, client and server in one thread (one core), no resumption,"
    echo "   certificate verified; each: connect, both sides done, client closes, server drains."
    echo "   Ours through the C API over an in-memory BIO_s_dgram_pair; reference quinn-proto alone,"
    echo "   datagrams shuttled in memory. Paired: both in one process, turns of 50 ms, $ROUNDS x ${HS_SECS} s"
    echo "   each (a slow second of the host slows both). Then separate programs (bench/quic_handshakes.c),"
    echo "   best of $ROUNDS x ${HS_SECS} s each, interleaved; the UDP line adds the kernel."
    row "quic handshakes" "osslquic (paired)" "$(kv "$po" hps)" quinn-proto "$(kv "$pr" hps)" "/s" 0.9
    row "" "osslquic (pair)" "$(kv "$pair" hps)" quinn-proto "$(kv "$ref" hps)" "/s" 0
    row "" "osslquic (UDP)" "$(kv "$udp" hps)" quinn-proto "$(kv "$ref" hps)" "/s" 0
    # The untimed first handshake of each program: what a program's first connection waits.
    printf '%-16s %-20s %8.2f ms    | %-20s %8.2f ms    (best run; lower is better)\n' "  first handshake" \
        "osslquic (pair)" "$(kv "$pair" first_ms)" quinn-proto "$(kv "$ref" first_ms)"
fi

if [ "$ONLY" = all ] || [ "$ONLY" = idle ]; then
    o=$(timeout -k 5 120 "$OUT/quic_idle" -n "$IDLE_N" -s "$IDLE_SECS" -c "$CERTS") || fail "quic_idle"
    r=$(timeout -k 5 120 "$QB" --certs "$CERTS" idle "$IDLE_N" "$IDLE_SECS") || fail "quinn_bench idle"
    echo
    echo "== Idle: established connections on one listener, nothing sent; the listener process's CPU"
    echo "   (getrusage) over ${IDLE_SECS} s. Setup is capped at 15 s so that the 30 s idle timeout stays"
    echo "   out of the window: fewer than $IDLE_N connections when setup is slow. Ours: clients on"
    echo "   one UDP socket each in another process. quinn: a server endpoint on a current-thread tokio"
    echo "   runtime, clients on one client endpoint in another process. Goal ~ 0: < 0.1% of a core."
    echo "   Server CPU/conn: the server process's CPU through setup (handshakes over UDP) per connection."
    awk -v on="$(kv "$o" conns)" -v oc="$(kv "$o" listener_cpu)" -v rn="$(kv "$r" conns)" -v rc="$(kv "$r" server_cpu)" \
        -v s="$IDLE_SECS" 'BEGIN {
        printf("%-16s %-20s %8.4f s CPU, %5d conns | %-20s %8.4f s CPU, %5d conns (goal ~ 0) %s\n",
               "quic idle", "osslquic", oc, on, "quinn", rc, rn, (oc / s < 0.001) ? "ok" : "MISSED")
    }'
    printf '%-16s %-20s %s per-connection ticks, %s loop wake-ups in the window;\n' "" osslquic \
        "$(kv "$o" ticks)" "$(kv "$o" wakeups)"
    printf '%-16s %-20s clients %s s CPU in the window; setup %s s (quinn %s s)\n' "" "" \
        "$(kv "$o" client_cpu)" "$(kv "$o" setup)" "$(kv "$r" setup)"
    # SSL_poll over the idle connections (issue 4: cost grows with ready items, not with all;
    # "polling 1,000 idle items costs about as much as polling one", read here as within 3x:
    # one item's cost is mostly the event handling (a recvmmsg that finds nothing), a
    # per-object poll would be ~100x).
    awk -v p1="$(kv "$o" poll1_us)" -v pk="$(kv "$o" poll1000_us)" -v pa="$(kv "$o" pollall_us)" \
        -v n="$(kv "$o" conns)" -v t="$(kv "$o" poll_ticks)" 'BEGIN {
        k = n < 1000 ? n : 1000
        printf("%-16s %-20s %8.2f us for 1 item | %8.2f us for %d idle items | ratio %6.2fx (goal about 1x, <= 3x) %s\n",
               "quic SSL_poll", "zero timeout", p1, pk, k, pk / p1, (pk <= 3 * p1) ? "ok" : "MISSED")
        printf("%-16s %-20s %8.2f us for %d idle items (%.1f ns/item over one), %d per-connection ticks\n",
               "", "", pa, n, n > 1 ? 1000 * (pa - p1) / (n - 1) : 0, t)
    }'
    # Memory per idle connection (issue 13): heap in use per connection, ours from the idle run
    # above, quinn-proto's from the same number of connections made in memory.
    m=$(timeout -k 5 120 "$QB" --certs "$CERTS" memory "$(kv "$o" conns)") || fail "quinn_bench memory"
    echo
    echo "== Memory per idle connection: heap in use (glibc mallinfo2: every arena + mmapped chunks) per"
    echo "   established idle connection, KiB. Ours: each process of the idle run above, from just before"
    echo "   its first connection to the end of setup and settling (clients: one SSL object, domain and"
    echo "   UDP socket each). quinn-proto: the same number of connections in memory (one client"
    echo "   Endpoint each), quinn's default transport settings with the same stream limits"
    echo "   (1000 bidi + 1000 uni the peer may open); server after the clients are dropped."
    awk -v o="$(kv "$o" server_heap_kb)" -v r="$(kv "$m" server_heap_kb)" -v osr="$(kv "$o" server_rss_kb)" \
        -v co="$(kv "$o" client_heap_kb)" -v cr="$(kv "$m" client_heap_kb)" -v cor="$(kv "$o" client_rss_kb)" 'BEGIN {
        printf("%-16s %-20s %8.1f KiB   | %-20s %8.1f KiB   | ratio %6.3fx (goal <= 40 KiB) %s\n",
               "quic memory", "osslquic server", o, "quinn-proto server", r, o / r, (o <= 40) ? "ok" : "MISSED")
        printf("%-16s %-20s %8.1f KiB   | %-20s %8.1f KiB   | ratio %6.3fx (lower is better)\n",
               "", "osslquic client", co, "quinn-proto client", cr, co / cr)
        printf("%-16s %-20s server %.1f KiB, client %.1f KiB per connection\n", "  RSS (same run)", "osslquic", osr, cor)
    }'
    # Setup is a handshake figure over UDP as a by-product: the server side's CPU per connection.
    awk -v o="$(kv "$o" setup_cpu_listener)" -v on="$(kv "$o" conns)" -v r="$(kv "$r" setup_cpu_server)" \
        -v rn="$(kv "$r" conns)" 'BEGIN {
        printf("%-16s %-20s %8.3f ms    | %-20s %8.3f ms    | ratio %6.3fx (lower is better)\n",
               "  srv CPU/conn", "osslquic listener", 1000 * o / on, "quinn server", 1000 * r / rn, (o / on) / (r / rn))
    }'
fi

if [ "$ONLY" = all ] || [ "$ONLY" = mt ]; then
    # quic_mt's own limit covers connect, warm-up, window, drain and close; timeout(1) is the
    # last resort against a hung library (it ends the forked server too).
    mt_limit=$(awk -v s="$MT_SECS" 'BEGIN { printf("%d", s + 40) }')
    mt_run() {
        prog=$OUT/quic_mt
        [ "${2:-}" = -L ] && prog=$OUT/quic_mt_locks
        timeout -k 5 $((mt_limit + 20)) "$prog" -m "$1" -n "$MT_CONNS" -s "$MT_SECS" -u 1 \
            -C "$MT_CLIENT" -w "$MT_WORKERS" -t "$mt_limit" -c "$CERTS" ${2:-}
    }
    thr="" sgl="" tbest="" sbest="" i=0
    while [ "$i" -lt "$MT_ROUNDS" ]; do
        t=$(mt_run threaded) || { printf '%s\n' "$t"; fail "quic_mt -m threaded"; }
        s=$(mt_run single) || { printf '%s\n' "$s"; fail "quic_mt -m single"; }
        thr="$thr$t
"
        sgl="$sgl$s
"
        tbest=$(better "$tbest" "$t" rps)
        sbest=$(better "$sbest" "$s" rps)
        i=$((i + 1))
    done
    if [ "$MT_WORKERS" -gt 0 ]; then
        tdesc="blocking, a thread per connection accepting streams for a pool of $MT_WORKERS threads, plus"
    else
        tdesc="blocking, one thread per connection (SSL_accept_stream, read, write, free), plus"
    fi
    if [ "$MT_CLIENT" = one ]; then
        cdesc="one thread, all connections on one UDP socket (SSL_new_from_listener), SSL_poll"
    else
        cdesc="one thread, one UDP socket per connection, poll(2) + SSL_handle_events"
    fi
    echo
    echo "== Threads (issue 4): $MT_CONNS client connections, each asking one request at a time on a new"
    echo "   bidi stream: \"GET /10240\" + FIN, then 10240 bytes + FIN back, every byte checked."
    echo "   threaded: $tdesc"
    echo "   an accept thread blocked in SSL_accept_connection. single-thread: one non-blocking thread"
    echo "   on SSL_poll over listener, connections and streams (the core issue's server design)."
    echo "   Client (the same for both): another process, $cdesc."
    echo "   It shares the $(nproc) cores with the server: no server can have them all."
    echo "   req/s over ${MT_SECS} s after 1 s of warm-up, $MT_ROUNDS runs of each, interleaved;"
    echo "   ratio = threaded / single. CPU/req = CPU time over the window / requests in it (server:"
    echo "   all its threads; client: itself); cores = CPU time / window; csw/req = the server's"
    echo "   voluntary context switches over the whole run / requests it served; others = what the"
    echo "   rest of the machine used meanwhile (/proc/stat busy time - server - client)."
    i=1
    while [ "$i" -le "$MT_ROUNDS" ]; do
        t=$(printf '%s' "$thr" | sed -n "${i}p")
        s=$(printf '%s' "$sgl" | sed -n "${i}p")
        row "quic mt" "threaded, run $i" "$(kv "$t" rps)" "single-thread, run $i" "$(kv "$s" rps)" "req/s" 0
        i=$((i + 1))
    done
    # Issue 13's goal on this machine: threaded >= 0.95x single (issue 4 asked 1.5x, which the
    # ceiling below shows this machine cannot reach).
    row "quic mt" "threaded, best" "$(kv "$tbest" rps)" "single-thread, best" "$(kv "$sbest" rps)" "req/s" 0.95
    # Issue 13's other goals, best runs: server CPU per request <= 1.10x, p99 <= 1.5x.
    awk -v tc="$(kv "$tbest" server_cpu)" -v tn="$(kv "$tbest" reqs)" -v sc="$(kv "$sbest" server_cpu)" \
        -v sn="$(kv "$sbest" reqs)" -v tp="$(kv "$tbest" p99_ms)" -v sp="$(kv "$sbest" p99_ms)" 'BEGIN {
        c = (tc / tn) / (sc / sn); p = tp / sp
        printf("%-16s %-20s %8.1f us  | %-20s %8.1f us  | ratio %6.3fx (goal <= 1.10x) %s\n", "quic mt",
               "threaded CPU/req", 1e6 * tc / tn, "single CPU/req", 1e6 * sc / sn, c, c <= 1.10 ? "ok" : "MISSED")
        printf("%-16s %-20s %8.2f ms  | %-20s %8.2f ms  | ratio %6.3fx (goal <= 1.50x) %s\n", "quic mt",
               "threaded p99", tp, "single p99", sp, p, p <= 1.5 ? "ok" : "MISSED")
    }'
    # What the machine allows: client and server share its cores, so no server whose requests
    # cost what the single-thread server's cost (its CPU and the client's) can serve more than
    # (cores - what the rest of the machine took) / (server + client CPU per request), however
    # many threads it runs.
    awk -v sc="$(kv "$sbest" server_cpu)" -v cc="$(kv "$sbest" client_cpu)" -v n="$(kv "$sbest" reqs)" \
        -v rps="$(kv "$sbest" rps)" -v mc="$(kv "$sbest" machine_cpu)" -v w="$(kv "$sbest" secs)" \
        -v cores="$(nproc)" 'BEGIN {
        o = (mc - sc - cc) / w
        if (o < 0) o = 0
        c = (cores - o) * n / (sc + cc)
        printf("%-16s %-20s (%d cores - %.2f used by others) / (server %.1f + client %.1f us CPU per request, best single run) = %.0f req/s = %.2fx single\n",
               "  ceiling", "this machine", cores, o, 1e6 * sc / n, 1e6 * cc / n, c, c / rps)
        if (c / rps < 1.5)
            printf("%-16s %-20s below the 1.5x goal of issue 4: with the load generator on the same %d cores no server can reach it here\n",
                   "", "", cores)
    }'
    cpu_line() {
        awk -v label="$1" -v sc="$(kv "$2" server_cpu)" -v cc="$(kv "$2" client_cpu)" -v n="$(kv "$2" reqs)" \
            -v w="$(kv "$2" secs)" -v p50="$(kv "$2" p50_ms)" -v p99="$(kv "$2" p99_ms)" \
            -v th="$(kv "$2" server_threads)" -v vc="$(kv "$2" server_vcsw)" -v sv="$(kv "$2" served)" \
            -v mc="$(kv "$2" machine_cpu)" 'BEGIN {
            printf("%-16s %-20s server %5.1f us (%4.2f cores, %2d thr, %4.1f csw/req)", "  CPU/req", label,
                   1e6 * sc / n, sc / w, th, vc / sv)
            printf(" | client %5.1f us (%4.2f cores) | others %4.2f cores", 1e6 * cc / n, cc / w, (mc - sc - cc) / w)
            printf(" | p50 %5.2f ms, p99 %6.2f ms\n", p50, p99)
        }'
    }
    i=1
    while [ "$i" -le "$MT_ROUNDS" ]; do
        cpu_line "threaded, run $i" "$(printf '%s' "$thr" | sed -n "${i}p")"
        cpu_line "single, run $i" "$(printf '%s' "$sgl" | sed -n "${i}p")"
        i=$((i + 1))
    done    # Lock figures (issue 13): the threaded load once more, on a library built with the
    # lock-tracking feature (src/sync.rs: every named acquisition's wait and hold time).
    if cargo build --release --quiet --features lock-tracking --target-dir target/lock-tracking; then
        # shellcheck disable=SC2086 # LIBS is a list of flags
        "$CC" -O2 -g -Wall -Wextra -std=c11 -D_GNU_SOURCE -Iinclude -o "$OUT/quic_mt_locks" bench/quic_mt.c \
            target/lock-tracking/release/libosslquic.a $LIBS
        l=$(mt_run threaded -L) || { printf '%s\n' "$l"; fail "quic_mt -m threaded -L"; }
        echo
        echo "== Locks under the threaded load (one more threaded run, library built with --features"
        echo "   lock-tracking, $(kv "$l" rps) req/s): per named acquisition, the time the lock was held"
        echo "   as a share of the server's CPU time over its whole run ($(kv "$l" server_run_cpu) s), the"
        echo "   acquisitions, and the mean time held and waited for. Hold time is wall time: a holder"
        echo "   the scheduler preempts keeps holding. LOCK: PURPOSE; the total per lock comes first."
        printf '%s\n' "$l" | sed -n 's/^locks //p' | tr ' ' '\n' | sed -n 's/^lock=//p' |
            awk -F'|' -v cpu="$(kv "$l" server_run_cpu)" '
            { name = $1; gsub("_", " ", name); lk = name; sub(/:.*/, "", lk)
              n[NR] = name; h[NR] = $2; w[NR] = $3; c[NR] = $4; th[lk] += $2; tc[lk] += $4; tw[lk] += $3 }
            END {
                for (k in th)
                    printf("%-16s %-34s %6.1f%% of server CPU  %8d acq  %8.2f us held  %8.2f us waited%s\n",
                           "  lock total", k, 100 * th[k] / 1e9 / cpu, tc[k], tc[k] ? th[k] / tc[k] / 1e3 : 0,
                           tc[k] ? tw[k] / tc[k] / 1e3 : 0,
                           (k == "domain" || k == "endpoint") ? sprintf("  (goal <= 10%%: %s)",
                                100 * th[k] / 1e9 / cpu <= 10 ? "ok" : "MISSED") : "")
                # Purposes by hold time, largest first (a few dozen: a selection sort will do).
                for (j = 1; j <= NR; j++) {
                    b = 0
                    for (i = 1; i <= NR; i++)
                        if (!(i in done) && (b == 0 || h[i] > h[b])) b = i
                    done[b] = 1
                    if (h[b] / 1e9 / cpu < 0.001) break
                    printf("%-16s %-34s %6.1f%% of server CPU  %8d acq  %8.2f us held  %8.2f us waited\n",
                           "  lock", n[b], 100 * h[b] / 1e9 / cpu, c[b], c[b] ? h[b] / c[b] / 1e3 : 0,
                           c[b] ? w[b] / c[b] / 1e3 : 0)
                }
            }'
    else
        echo "quic bench: cannot build the lock-tracking library; lock figures left out" >&2
    fi
fi
