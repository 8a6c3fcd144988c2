#!/bin/sh
# Initial flood (issue 14): our hq-interop server (c-demos/quic-server) under a flood of genuine
# QUIC v1 client Initials (examples/initial_flood.rs: real ClientHellos, properly protected,
# thousands per second from FLOOD_SOCKETS source ports on 127.0.0.1, never answered), while our
# client (c-demos/quic-client) connects and fetches 1 MiB, every byte checked. Two cases: Retry
# on (the default listener) and Retry off (--no-retry: SSL_LISTENER_FLAG_NO_VALIDATE). The
# server presents a ~5 KB certificate chain, so that without Retry its first flight to each
# flood connection reaches the amplification limit.
# Each case passes if
#   - the client connected and fetched its 1 MiB within LEGIT_LIMIT seconds (its own bound);
#   - the flood had sent at least FLOOD_MARK Initials before the client started and was still
#     sending when it ended (FLOOD_MARK > 1,024: more handshakes than the accept queue holds,
#     well within their 30 s idle timeout);
#   - for every flood source port, the bytes the server sent to it are at most AMP_LIMIT (3,
#     RFC 9000 §8.1) times the bytes that port sent; and for every flood connection (one
#     Initial each), what the server sent it is at most AMP_LIMIT times that Initial (stricter:
#     the server may have dropped some of a port's Initials, which the port's count includes);
#     with no datagram lost by the flood's receiving sockets (the counts would then be short);
#   - the server's peak memory stayed under MAX_RSS_MIB (256 MiB): what the flood can make it
#     hold is bounded (a handshake in progress holds about 40 KiB until its 30 s idle timeout,
#     so an unbounded number of them at 4,000/s would reach gigabytes);
#   - with Retry on: the flood was answered with Retries and nothing else (no server state);
#     and, once the library counts Retries (the server then logs "N Retries sent"), the server
#     counted at least the Retries the flood received.
# Figures: flood rate and total, answers by kind, the client's connect and transfer times, the
# server's engine counters (accepted, refused, Retries sent once the library counts them); one
# summary line goes to build/reliability/flood.txt. Every process is bounded by `timeout`,
# every wait polls with a bound. Logs: build/flood/<case>.{server,flood,client}.
# Knobs: FLOOD_RATE (Initials/s, default 4000), FLOOD_SOCKETS (128), FLOOD_SECS (the flood's
# length if nothing stops it earlier, default 15: beyond the client's bound).
set -u
cd "$(dirname "$0")/../.."
: "${BUILD:=build}"
D="$BUILD/demos"
L="$BUILD/flood"
CERTS="$BUILD/certs"
mkdir -p "$L" "$BUILD/reliability"
. tests/lib.sh
FLOOD="target/release/examples/initial_flood"
: "${FLOOD_RATE:=4000}" "${FLOOD_SOCKETS:=128}" "${FLOOD_SECS:=15}"
# Initials sent before the client starts: more than the accept queue holds (1,024), and
# enough that without a bound on unvalidated handshakes the server is already loaded.
: "${FLOOD_MARK:=8192}"
AMP_LIMIT=3
LEGIT_BYTES=1048576
LEGIT_LIMIT=10
MAX_RSS_MIB=256
figures=""

: >"$L/build.log"
built flood sh c-demos/run-demo.sh --build-only
built flood cargo build --release --quiet --example initial_flood
need_certs
big_chain "$CERTS" "$L/big-chain.pem"

# wait_line FILE PATTERN PID SECS: polls (10 per second) until FILE has a line matching
# PATTERN; 1 if PID exits first or SECS pass.
wait_line() {
    i=0
    while [ $i -lt $(($4 * 10)) ]; do
        grep -q "$2" "$1" && return 0
        alive "$3" || return 1
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# field FILE SED-EXPRESSION: the first value the expression prints from FILE.
field() { sed -n "$2" "$1" | head -1; }

# amplification FILE: from the flood's per-port lines, "VIOLATIONS MAX-RATIO PORTS": ports
# that got more than AMP_LIMIT times what they sent, and the largest ratio received/sent.
amplification() {
    awk -v lim="$AMP_LIMIT" '/^port [0-9]+: sent/ {
            ports++; s = $6; r = $11
            if (r > lim * s) v++
            if (s > 0 && r / s > max) max = r / s
        } END { printf "%d %.2f %d\n", v, max, ports }' "$1"
}

# case NAME [server options]: one run; appends its figures to $figures.
run_case() {
    name=$1
    shift
    ok=1
    why=""
    for f in server server.out flood client; do : >"$L/$name.$f"; done
    # shellcheck disable=SC2086
    timeout -k 5 180 "$D/quic-server" -q --idle-exit 120 "$@" "$L/big-chain.pem" "$CERTS/key.pem" 0 \
        >"$L/$name.server.out" 2>"$L/$name.server" &
    spid=$!
    pids="$pids $spid"
    if ! port=$(wait_listen "$L/$name.server.out" "$spid"); then
        result "$name" 0 "the server did not start"
        stop "$spid" >/dev/null
        return
    fi
    count=$((FLOOD_RATE * FLOOD_SECS))
    timeout -k 5 180 "$FLOOD" --sockets "$FLOOD_SOCKETS" --rate "$FLOOD_RATE" --count "$count" \
        --mark "$FLOOD_MARK" --linger 2 "$port" >"$L/$name.flood" 2>&1 &
    fpid=$!
    pids="$pids $fpid"
    # Making the Initials takes about 100 µs each (more on a busy machine): up to 90 s.
    if ! wait_line "$L/$name.flood" '^mark: ' "$fpid" 90; then
        result "$name" 0 "the flood did not reach $FLOOD_MARK Initials"
        stop "$fpid" >/dev/null
        stop "$spid" >/dev/null
        return
    fi
    t0=$(now)
    timeout -k 5 $((LEGIT_LIMIT + 10)) "$D/quic-client" -v -c "$CERTS/ca.pem" -s localhost -t "$LEGIT_LIMIT" \
        127.0.0.1 "$port" "/$LEGIT_BYTES" >"$L/$name.client" 2>&1 || { ok=0; why="$why the client failed;"; }
    took=$(since "$t0")
    stop "$fpid" || { ok=0; why="$why the flood exited badly;"; }
    stop "$spid" || { ok=0; why="$why the server exited badly;"; }

    legit=1
    grep -q "^quic-client: 1 requests ok, $LEGIT_BYTES bytes" "$L/$name.client" || {
        legit=0
        why="$why $(sed -n 's/^quic-client: //p' "$L/$name.client" | tail -n 2 | tr '\n' ';' | sed 's/;/; /g; s/ $//')"
    }
    [ $legit = 1 ] || ok=0
    connect_ms=$(field "$L/$name.client" 's/^quic-client: connected in \([0-9.]*\) s.*/\1/p' |
        awk '$1 != "" { printf "%.0f", $1 * 1000 }')
    total=$(field "$L/$name.client" 's/^quic-client: 1 requests ok, [0-9]* bytes in \([0-9.]*\) s.*/\1/p')
    isize=$(field "$L/$name.flood" 's/^flood: made [0-9]* Initials (\([0-9]*\) bytes each).*/\1/p')
    conn_max=$(field "$L/$name.flood" 's/^flood: per connection: .* at most \([0-9]*\) bytes.*/\1/p')
    answered=$(field "$L/$name.flood" 's/^flood: per connection: \([0-9]*\) answered.*/\1/p')

    sent=$(field "$L/$name.flood" 's/^flood: sent \([0-9]*\) Initials.*/\1/p')
    rate=$(field "$L/$name.flood" 's/^flood: sent [0-9]* Initials .*: \([0-9]*\)\/s.*/\1/p')
    answers=$(field "$L/$name.flood" 's/^flood: received \(.*\)/\1/p')
    drops=$(field "$L/$name.flood" 's/^flood: receive drops \([0-9]*\) .*/\1/p')
    retries_in=$(field "$L/$name.flood" 's/^flood: received .*: Retry \([0-9]*\),.*/\1/p')
    set -- $(amplification "$L/$name.flood")
    viol=$1 maxamp=$2 nports=$3
    engine=$(field "$L/$name.server" 's/^quic-server: engine: //p')
    rss=$(field "$L/$name.server" 's/^quic-server: peak RSS \([0-9]*\) KiB/\1/p')

    [ "${sent:-0}" -ge "$FLOOD_MARK" ] || { ok=0; why="$why the flood sent ${sent:-nothing};"; }
    [ "$count" -gt "${sent:-0}" ] || { ok=0; why="$why the flood ended before the client did: $sent Initials;"; }
    [ "$nports" = "$FLOOD_SOCKETS" ] || { ok=0; why="$why $nports flood ports reported, not $FLOOD_SOCKETS;"; }
    [ "$viol" = 0 ] || { ok=0; why="$why $viol flood ports got more than ${AMP_LIMIT}x what they sent (max ${maxamp}x);"; }
    if [ -z "$conn_max" ] || [ -z "$isize" ]; then
        ok=0
        why="$why no per-connection counts from the flood;"
    elif [ "$conn_max" -gt $((AMP_LIMIT * isize)) ]; then
        ok=0
        why="$why a flood connection got $conn_max bytes for its $isize-byte Initial;"
    fi
    [ "${drops:-x}" = 0 ] || { ok=0; why="$why the flood's sockets dropped ${drops:-an unknown number of} datagrams: the answers were not all counted;"; }
    [ -n "$rss" ] && [ "$rss" -le $((MAX_RSS_MIB * 1024)) ] ||
        { ok=0; why="$why the server's peak RSS was ${rss:-unknown} KiB (bound: $MAX_RSS_MIB MiB);"; }
    [ -n "$engine" ] || { ok=0; why="$why no engine counters from the server;"; }
    retries_srv=$(echo "$engine" | sed -n 's/.* \([0-9]*\) Retries sent.*/\1/p')
    case "$name" in
    retry-on)
        # Every flood Initial must get a Retry and nothing else: no handshake state.
        [ "${retries_in:-0}" -gt 0 ] || { ok=0; why="$why the flood got no Retry;"; }
        echo "$answers" | grep -q 'Initial 0 .*Handshake 0,' || { ok=0; why="$why the flood got more than Retries: $answers;"; }
        if [ -n "$retries_srv" ] && [ "$retries_srv" -lt "${retries_in:-0}" ]; then
            ok=0
            why="$why the server counted $retries_srv Retries, the flood received $retries_in;"
        fi
        ;;
    esac

    detail="flood $sent Initials at $rate/s from $nports ports; answers: $answers; max amplification ${maxamp}x per port, $conn_max bytes for one $isize-byte Initial ($answered connections answered); server: $engine, peak RSS $((${rss:-0} / 1024)) MiB; client: connected in ${connect_ms:-?} ms, $LEGIT_BYTES bytes in ${total:-?} s (${took} s with its start)"
    [ $legit = 1 ] || connect_ms=x
    figures="$figures|$name $sent $rate ${connect_ms:-x} $maxamp $conn_max $isize"
    if [ $ok = 1 ]; then
        result "$name" 1 "$detail"
    else
        why=${why# }
        result "$name" 0 "${why%;}; $detail"
    fi
}

# The logs shown under a FAIL line.
result_logs() { echo "$L/$1.client $L/$1.server"; }

# The summary line: totals over the runs, the client's connect time per case.
summary() {
    echo "$figures" | tr '|' '\n' | awk -v runs="$1" 'NF == 7 {
            n += $2; r += $3; k++
            c = c (c ? " / " : "") ($4 == "x" ? "failed (no 1 MiB within 10 s)" : $4 " ms") " (" ($1 == "retry-on" ? "Retry on" : "Retry off") ")"
            if ($5 > m) m = $5
            if ($7 > 0 && $6 / $7 > mc) mc = $6 / $7
        } END {
            printf "flood: %d run%s, %d Initials at %d/s on average, legit client connected in %s, max amplification %.2fx per port, %.2fx per connection\n",
                runs, runs == 1 ? "" : "s", n, k ? r / k : 0, c, m, mc
        }'
}

# `run.sh` runs both cases; `run.sh retry-off` only that one.
[ $# = 0 ] && set -- retry-on retry-off
for c in "$@"; do
    case $c in
    retry-on) run_case retry-on ;;
    retry-off) run_case retry-off --no-retry ;;
    *) echo "unknown case $c (retry-on, retry-off)"; failed=$((failed + 1)) ;;
    esac
done

summary $((passed + failed)) | tee "$BUILD/reliability/flood.txt"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
