#!/bin/sh
# Prints the README's support table from include/osslquic.h: every exported function, and
# whether it is implemented or returns "unsupported". Functions listed in UNSUPPORTED below
# exist only to fail cleanly with an error-queue entry.
set -eu
cd "$(dirname "$0")/.."
UNSUPPORTED=""
# Implemented only in a library built with the lock-tracking cargo feature (measurements for
# `make bench`); the default build returns "unsupported".
LOCK_TRACKING="OSSLQUIC_lock_stats OSSLQUIC_lock_stats_reset"
# Work on the cipher and MAC contexts a session-ticket key callback is given, and on no other
# (osslquic makes no others).
TICKET_CB="EVP_EncryptInit_ex EVP_EncryptInit_ex2 EVP_DecryptInit_ex EVP_DecryptInit_ex2 EVP_CIPHER_CTX_get_iv_length EVP_MAC_CTX_set_params"
# Per-connection early-data limits: TLS connections over TCP; a QUIC object's early data
# follows its context (SSL_CTX_set_max_early_data), and the call fails saying so.
EARLY_TLS_ONLY="SSL_set_max_early_data SSL_set_recv_max_early_data"
echo "| function | status |"
echo "|---|---|"
# Functions returning a function pointer are declared `int (*NAME(args))(...)`.
grep -E '^[A-Za-z_][A-Za-z0-9_ \*]*([ \*]|\(\*)([A-Za-z][A-Za-z0-9_]*)\(' include/osslquic.h |
    sed -E -e 's/^[A-Za-z_][A-Za-z0-9_ ]*\(\*([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/;t' \
        -e 's/^.*[ \*]([A-Za-z_][A-Za-z0-9_]*)\(.*/\1/' | sort -u |
    while read -r f; do
        case " $UNSUPPORTED " in
        *" $f "*) echo "| \`$f\` | returns unsupported |" ;;
        *)
            case " $LOCK_TRACKING " in
            *" $f "*) echo "| \`$f\` | implemented with the \`lock-tracking\` feature, else returns unsupported |"; continue ;;
            esac
            case " $EARLY_TLS_ONLY " in
            *" $f "*) echo "| \`$f\` | implemented for TLS over TCP; QUIC objects: unsupported (their context's setting applies) |"; continue ;;
            esac
            case " $TICKET_CB " in
            *" $f "*) echo "| \`$f\` | implemented, in a ticket key callback (\`SSL_CTX_set_tlsext_ticket_key_evp_cb\`) |"; continue ;;
            esac
            echo "| \`$f\` | implemented |"
            ;;
        esac
    done

