# osslquic: one flat Makefile. cargo tracks the Rust side, make tracks the C side.
# Targets: all, demo, test, bench, check-header, lint, fmt, clean.

CARGO     ?= cargo
CC        ?= cc
CFLAGS    ?= -O2 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE
CPPFLAGS  += -Iinclude
# Matches `cargo rustc --release -- --print native-static-libs` (checked by tests/check-link.sh).
LDLIBS    := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
LIB_REL   := target/release/libosslquic.a
LIB_DBG   := target/debug/libosslquic.a
BUILD     := build

export CC CFLAGS CPPFLAGS LDLIBS LIB_REL LIB_DBG BUILD

.PHONY: all lib lib-debug demo test bench check-header lint fmt clean setup c-tests rust-tests

all: lib

lib:
	$(CARGO) build --release --quiet

lib-debug:
	$(CARGO) build --quiet

setup:
	@sh tests/setup.sh

demo: lib
	@sh c-demos/run-demo.sh

test: setup lib lib-debug
	@sh tests/run-all.sh

bench: lib
	@sh bench/run.sh

check-header:
	@sh tests/check-header.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
