# osslquic: one flat Makefile. cargo tracks the Rust side, make tracks the C side.
# Targets: all, demo, test, bench, fuzz, check-header, lint, fmt, clean, install.

CARGO     ?= cargo
CC        ?= cc
CFLAGS    ?= -O2 -g -Wall -Wextra -Werror -std=c11 -D_GNU_SOURCE
CPPFLAGS  += -Iinclude
# Matches `cargo rustc --release -- --print native-static-libs` (checked by tests/check-link.sh).
LDLIBS    := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
LIB_REL   := target/release/libosslquic.a
LIB_DBG   := target/debug/libosslquic.a
LIB_SO    := target/release/libosslquic.so
BUILD     := build

# `make install PREFIX=... DESTDIR=...`: headers, libosslquic.a, libosslquic.so with its SONAME
# chain, and lib/pkgconfig/osslquic.pc. SOVERSION must agree with the SONAME in build.rs.
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
SOVERSION  := 0

export CC CFLAGS CPPFLAGS LDLIBS LIB_REL LIB_DBG BUILD

.PHONY: all lib lib-debug demo test bench fuzz check-header lint fmt clean setup c-tests rust-tests install

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

# Coverage-guided fuzzing (cargo-fuzz, nightly): each target for FUZZ_SECONDS (default 60), with
# executions per second, corpus size and coverage per target (tests/fuzz.sh).
fuzz:
	@FUZZ_SECONDS=$(or $(FUZZ_SECONDS),60) sh tests/fuzz.sh --run

check-header:
	@sh tests/check-header.sh

# Also a suite of `make test` (tests/run-all.sh): formatting and clippy's warnings fail it.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings

fmt:
	$(CARGO) fmt --all

# Every header under include/, keeping its subdirectory. The .pc's Libs.private starts with
# -Wl,-Bdynamic so that `cc prog.c -Wl,-Bstatic $$(pkg-config --static --libs osslquic)` takes
# libosslquic.a but the system libraries (libgcc_s has no static form) stay shared.
install: lib
	install -d "$(DESTDIR)$(INCLUDEDIR)" "$(DESTDIR)$(LIBDIR)/pkgconfig"
	cd include && find . -name '*.h' | while read -r h; do \
		install -D -m 644 "$$h" "$(DESTDIR)$(INCLUDEDIR)/$$h" || exit 1; done
	install -m 644 $(LIB_REL) "$(DESTDIR)$(LIBDIR)/libosslquic.a"
	install -m 755 $(LIB_SO) "$(DESTDIR)$(LIBDIR)/libosslquic.so.$(VERSION)"
	ln -sf libosslquic.so.$(VERSION) "$(DESTDIR)$(LIBDIR)/libosslquic.so.$(SOVERSION)"
	ln -sf libosslquic.so.$(SOVERSION) "$(DESTDIR)$(LIBDIR)/libosslquic.so"
	{ echo 'prefix=$(PREFIX)'; \
	  echo 'libdir=$(patsubst $(PREFIX)%,$${prefix}%,$(LIBDIR))'; \
	  echo 'includedir=$(patsubst $(PREFIX)%,$${prefix}%,$(INCLUDEDIR))'; \
	  echo; \
	  echo 'Name: osslquic'; \
	  echo 'Description: OpenSSL 3.5 API for datagram BIOs, QUIC and TLS, on rustls and quinn-proto'; \
	  echo 'Version: $(VERSION)'; \
	  echo 'Cflags: -I$${includedir}'; \
	  echo 'Libs: -L$${libdir} -losslquic'; \
	  echo 'Libs.private: -Wl,-Bdynamic $(LDLIBS)'; \
	} >"$(DESTDIR)$(LIBDIR)/pkgconfig/osslquic.pc"

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
