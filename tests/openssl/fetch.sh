#!/bin/bash
# Makes sure OpenSSL 3.5 is available as the reference for tests/openssl/run.sh: an installed
# build (bin/openssl, include/, lib/ with an rpath) under PREFIX and its unpacked source tree
# (demos/guide, doc/designs/ddd, test/quic-openssl-docker/hq-interop) under WORK.
#   fetch.sh [PREFIX] [WORK]       defaults: /opt/openssl-3.5 /var/tmp/openssl-3.5-src
# If both are there already, nothing is fetched or built. Otherwise the source package comes
# from Debian trixie through apt lists kept in WORK/apt (the system's apt configuration is
# not touched), and is configured, built and installed into PREFIX (minutes on 2 cores).
# The last line printed is the source tree's directory; any failure exits non-zero with one
# line saying why.
set -euo pipefail
prefix=${1:-/opt/openssl-3.5}
work=${2:-/var/tmp/openssl-3.5-src}

tree() { ls -d "$work"/openssl-3.5.*/ 2>/dev/null | head -n 1; }
src=$(tree || true)
if [ -x "$prefix/bin/openssl" ] && [ -f "$prefix/include/openssl/quic.h" ] && [ -n "$src" ]; then
    echo "${src%/}"
    exit 0
fi
die() { echo "fetch.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null || die "no apt-get: cannot fetch the Debian source package"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"

# The mirror the system already uses, with trixie's main component (sources included).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
{
    echo "deb [signed-by=$keyring] $mirror trixie main"
    echo "deb-src [signed-by=$keyring] $mirror trixie main"
} >"$work/apt/sources.list"
private_apt() {
    "$@" -o Dir::Etc::SourceList="$work/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache" \
        -o Dir::State::status=/dev/null
}
private_apt apt-get update -qq || die "apt-get update of the trixie lists failed ($mirror)"

# Newest 3.5 release first; a mirror may already have dropped the newest one's files.
fetched=""
for v in $(private_apt apt-cache showsrc openssl 2>/dev/null | sed -n 's/^Version: \(3\.5\..*\)/\1/p' | sort -rV); do
    if (cd "$work" && private_apt apt-get source --download-only -qq "openssl=$v") >/dev/null 2>&1; then
        fetched=$v
        break
    fi
    rm -f "$work"/openssl_*
done
[ -n "$fetched" ] || die "no OpenSSL 3.5 source package could be downloaded from $mirror"
tar -C "$work" -xzf "$work"/openssl_*.orig.tar.gz || die "cannot unpack the source of $fetched"
src=$(tree)
[ -n "$src" ] || die "the source package of $fetched did not unpack to openssl-3.5.*"
log="$work/build.log"
if ! (cd "$src" && ./Configure --prefix="$prefix" --libdir=lib --openssldir="$prefix/ssl" \
    no-docs no-tests "-Wl,-rpath,$prefix/lib" && make -j"$(nproc)" && make install_sw) >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "building $fetched failed (log: $log)"
fi
echo "${src%/}"
