#!/bin/sh
# Installs what `make test` and `make demo` need on a fresh Debian 12 machine, idempotently.
# Each tool is checked first; apt-get and pip run only when something is missing, so a second
# run does nothing and takes well under a second.
#   - build tools: cc, make, valgrind, python3 (with venv)
#   - libuv (libuv1-dev) for the async DDD demos
#   - interop peers: aioquic in build/venv (from PyPI), Debian's ngtcp2 client (optional:
#     its absence is reported, never fatal)
#   - the fleet suite (tests/fleet): HAProxy, nftables and conntrack (optional: without them,
#     or without root, that suite prints a SKIP line)
set -u
cd "$(dirname "$0")/.."
: "${BUILD:=build}"
as_root=0
[ "$(id -u)" = 0 ] && as_root=1
apt_updated=0

apt_install() { # apt_install PKG...: returns apt-get's status
    [ "$as_root" = 1 ] || { echo "setup: need root to install: $* (run as root or install them yourself)" >&2; return 1; }
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq >/dev/null 2>&1 || true
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1
}

need=""
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
command -v make >/dev/null 2>&1 || need="$need make"
command -v python3 >/dev/null 2>&1 || need="$need python3"
# tests/install.sh links through pkg-config and finds a bound UDP port with ss.
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
command -v ss >/dev/null 2>&1 || need="$need iproute2"
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    need="$need python3-venv"
fi
if [ -n "$need" ]; then
    echo "setup: installing$need"
    apt_install $need || { echo "setup: apt-get install$need failed" >&2; exit 1; }
fi

# libuv (headers, library, pkg-config file) for the async DDD demos (c-demos/ddd-async-*.c).
# Missing libuv is reported, not fatal: only those demos and their tests need it.
if ! pkg-config --exists libuv 2>/dev/null; then
    libuv_pkgs="libuv1-dev"
    command -v pkg-config >/dev/null 2>&1 || libuv_pkgs="$libuv_pkgs pkg-config"
    echo "setup: installing $libuv_pkgs (libuv, for the async DDD demos)"
    if ! apt_install $libuv_pkgs || ! pkg-config --exists libuv 2>/dev/null; then
        echo "setup: could not install libuv ($libuv_pkgs): the async DDD demos (c-demos/ddd-async-*) will not build and their tests will fail; install libuv1-dev yourself" >&2
    fi
fi

# The fleet suite (tests/fleet/run.sh): HAProxy as the TLS balancer, nftables for the QUIC
# balancer's rules, conntrack to flush flows. Missing ones are reported, not fatal: that suite
# then skips with a line saying what is missing.
fleet_need=""
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || fleet_need="$fleet_need haproxy"
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || fleet_need="$fleet_need nftables"
command -v conntrack >/dev/null 2>&1 || [ -x /usr/sbin/conntrack ] || fleet_need="$fleet_need conntrack"
if [ -n "$fleet_need" ]; then
    echo "setup: installing$fleet_need (the fleet suite, tests/fleet)"
    apt_install $fleet_need || echo "setup: note: apt-get install$fleet_need failed; the fleet suite will skip" >&2
fi

# aioquic, in a venv of our own so the system Python is left alone.
venv="$BUILD/venv"
if ! "$venv/bin/python" -c 'import aioquic' >/dev/null 2>&1; then
    echo "setup: creating $venv with aioquic"
    mkdir -p "$BUILD"
    { [ -x "$venv/bin/python" ] || python3 -m venv "$venv"; } &&
        "$venv/bin/pip" install -q --disable-pip-version-check aioquic >/dev/null ||
        { echo "setup: could not install aioquic into $venv (interop tests with aioquic will fail)" >&2; exit 1; }
fi

# ngtcp2's example clients (Debian package ngtcp2-client: gtlsclient, qtlsclient...). Optional.
ngtcp2_client() {
    for b in gtlsclient qtlsclient wsslclient bsslclient; do
        command -v "$b" >/dev/null 2>&1 && { echo "$b"; return 0; }
    done
    if command -v dpkg >/dev/null 2>&1; then
        dpkg -L ngtcp2-client 2>/dev/null | grep -E '/(gtls|qtls|wssl|bssl|ossl)client$' | head -1 | grep . && return 0
    fi
    return 1
}
if ! ngtcp2_client >/dev/null; then
    if command -v apt-cache >/dev/null 2>&1 && [ "$as_root" = 1 ]; then
        [ "$apt_updated" = 1 ] || { apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; }
        if apt-cache policy ngtcp2-client 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            echo "setup: installing ngtcp2-client"
            apt_install ngtcp2-client || echo "setup: note: apt-get install ngtcp2-client failed; the ngtcp2 interop test will fail" >&2
        else
            echo "setup: note: no ngtcp2-client package in the apt sources; the ngtcp2 interop test will fail" >&2
        fi
    else
        echo "setup: note: ngtcp2-client not installed and cannot be installed here (need root and apt); the ngtcp2 interop test will fail" >&2
    fi
    if c=$(ngtcp2_client); then echo "setup: ngtcp2 client: $c"; fi
fi
exit 0
