#!/bin/sh
# Installs what `make test` and `make demo` need on a fresh Debian 12 machine, idempotently.
# Each tool is checked first; apt-get runs only when something is missing.
set -u
need=""
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
command -v valgrind >/dev/null 2>&1 || need="$need valgrind"
command -v make >/dev/null 2>&1 || need="$need make"
command -v python3 >/dev/null 2>&1 || need="$need python3"
if [ -n "$need" ]; then
    echo "setup: installing$need"
    if [ "$(id -u)" != 0 ]; then
        echo "setup: need root to install:$need (run as root or install them yourself)" >&2
        exit 1
    fi
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need) >/dev/null ||
        { echo "setup: apt-get install$need failed" >&2; exit 1; }
fi
exit 0
