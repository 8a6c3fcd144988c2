#!/bin/sh
# ddd-async-nonpollable (libuv owns the sockets; datagram pair with addresses / BIO pair), each
# variant: the checks of test-async-pollable.sh, which runs them.
exec sh "$(dirname "$0")/test-async-pollable.sh" ddd-async-nonpollable
