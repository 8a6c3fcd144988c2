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
# The README's support table must match the header.
want=$(sh tools/support-table.sh)
have=$(sed -n '/^## Support table/,$p' README.md | grep '^|')
if [ "$want" != "$have" ]; then
    echo "README.md support table is stale: regenerate it with tools/support-table.sh" >&2
    exit 1
fi
echo "README support table up to date"
