#!/bin/sh
# ddd-async-unaddressed (ddd-async-nonpollable.c built with ADDRESSED=0: unaddressed datagram
# pairs, one per client address), each variant: the checks of test-async-pollable.sh.
exec sh "$(dirname "$0")/test-async-pollable.sh" ddd-async-unaddressed
