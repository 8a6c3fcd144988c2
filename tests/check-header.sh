#!/bin/sh
# Fails if the committed include/osslquic.h differs from what build.rs generates now.
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet
if git ls-files --error-unmatch include/osslquic.h >/dev/null 2>&1 && ! git diff --quiet -- include/osslquic.h; then
    echo "include/osslquic.h is stale: commit the regenerated header" >&2
    git diff --stat -- include/osslquic.h >&2
    exit 1
fi
echo "header up to date"
# Every macro the header defines is API, named as OpenSSL names its own (or OSSLQUIC_): a
# library-internal constant (cbindgen exports every `pub const`) would take a plain name like
# INTEGER or KEY_LEN from the programs that include <openssl/ssl.h>.
stray=$(grep -o '^#define [A-Za-z0-9_]*' include/osslquic.h | awk '{print $2}' |
    grep -Ev '^(SSL|SSL3|TLS|TLS1|TLSEXT|DTLS|BIO|ERR|X509|XN|NID|ASN1|OPENSSL|OSSL|OSSLQUIC|PEM|EVP)_|^OSSLQUIC_H$' || true)
if [ -n "$stray" ]; then
    echo "include/osslquic.h defines names that are not API (exclude them in cbindgen.toml):" $stray >&2
    exit 1
fi
echo "header macros all API-named"
# The README's support table must match the header.
want=$(sh tools/support-table.sh)
have=$(sed -n '/^## Support table/,$p' README.md | grep '^|')
if [ "$want" != "$have" ]; then
    echo "README.md support table is stale: regenerate it with tools/support-table.sh" >&2
    exit 1
fi
echo "README support table up to date"
