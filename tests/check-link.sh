#!/bin/sh
# Checks that the Makefile's LDLIBS equals what rustc says the static library needs.
set -eu
cd "$(dirname "$0")/.."
want=$(cargo rustc --release --quiet --lib -- --print native-static-libs 2>&1 | sed -n 's/.*native-static-libs: //p' | head -1)
have=$(sed -n 's/^LDLIBS *:= *//p' Makefile)
if [ "$want" != "$have" ]; then
    echo "Makefile LDLIBS '$have' but rustc wants '$want'" >&2
    exit 1
fi
echo "link flags match: $have"
