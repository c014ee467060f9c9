# preforkd: pre-forked TCP echo and proxy daemon.
#
#   make run          build and start in the foreground on conf/preforkd.conf
#   make check        build and run every test (unit, then integration)
#   make check-asan   the same suite against an ASan+UBSan build
#   make bench        side-by-side benchmark with HAProxy and nginx (make bench-quick: < 2 min)
#   make bench-scale  100,000 idle echo connections held: memory and spread
#   make bench-dispatch  dispatch = notify, reuseport, handoff side by side
#   make bench-source    proxy connect rate from one source address and from eight
#   make soak         reloads, a worker kill and stops under churn (SOAK_SECONDS=60)
#   make install      PREFIX=/usr/local DESTDIR= (binary, man pages, units, sample config)
#   make fuzz         libFuzzer on the PROXY parser, the config loader, the control
#                     socket's command parser, the metrics endpoint's HTTP request
#                     parser and the address-block parser, FUZZ_SECONDS each (default
#                     60); fails on a crash, a sanitizer report or a leak

PREFIX	?= /usr/local
SBINDIR	?= $(PREFIX)/sbin
MANDIR	?= $(PREFIX)/share/man
UNITDIR	?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc

CC	?= cc
CFLAGS	?= -O2 -g
WARN	 = -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS += -D_GNU_SOURCE -Isrc
DEPFLAGS = -MMD -MP
INIH_CFLAGS := $(shell pkg-config --cflags inih 2>/dev/null)
INIH_LIBS   := $(shell pkg-config --libs inih 2>/dev/null || echo -linih)
LIBS	 = -lev $(INIH_LIBS) -lm

ASAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all

PYTHON	 = /usr/bin/python3
PYTEST	 = $(PYTHON) -m pytest

# Debian packages the build and the tests need.
BUILD_DEPS = gcc make pkg-config libev-dev libinih-dev
TEST_DEPS  = perl python3 jq python3-pytest procps iproute2 mandoc systemd redis-server redis-tools iperf3 strace \
	     netcat-openbsd nginx curl socat prometheus
BENCH_DEPS = haproxy nginx libnginx-mod-stream gnuplot-nox redis-server redis-tools iperf3 wrk apache2-utils

SRCS	= $(wildcard src/*.c)
OBJS	= $(SRCS:src/%.c=build/obj/%.o)
AOBJS	= $(SRCS:src/%.c=build-asan/obj/%.o)

# Each unit test links its module and the few helpers it needs.
UNIT_TESTS = buf chan net config daemon sdnotify proxyproto upstream
UNIT_deps_buf    = buf
UNIT_deps_chan   = chan
UNIT_deps_net    = net
UNIT_deps_config = config confkey cidr cidrlist net log
UNIT_deps_daemon = daemon
UNIT_deps_sdnotify = sdnotify
UNIT_deps_proxyproto = proxyproto net
UNIT_deps_upstream = upstream net
UNIT_TESTS += log
UNIT_deps_log    = log
UNIT_TESTS += strbuf
UNIT_deps_strbuf = strbuf
UNIT_TESTS += ctlcmd
UNIT_deps_ctlcmd = ctlcmd
UNIT_TESTS += report
UNIT_deps_report = report strbuf reason
UNIT_TESTS += httpreq
UNIT_deps_httpreq = httpreq
UNIT_TESTS += prom
UNIT_deps_prom = prom strbuf reason
UNIT_TESTS += admin check health
UNIT_deps_admin  = admin config confkey cidr cidrlist net log
UNIT_deps_check  = check net log
UNIT_deps_health = health admin check chan config confkey cidr cidrlist net log
UNIT_TESTS += stats
UNIT_deps_stats  = stats
UNIT_TESTS += cidr
UNIT_deps_cidr   = cidr
UNIT_TESTS += clients
UNIT_deps_clients = clients

TOOLS	= pfload refecho keydump
# keydump prints the key table of the config module for the docs check
# (tests/integration/test_docs.py): it links that module and what it needs.
KEYDUMP_SRCS = src/config.c src/confkey.c src/cidr.c src/cidrlist.c src/net.c src/log.c

.PHONY: all run check check-unit check-integration check-asan deps deps-test \
	deps-bench bench bench-quick bench-scale bench-dispatch bench-source install uninstall clean

all: build/preforkd

build/preforkd: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $(OBJS) $(LIBS)

build/obj/%.o: src/%.c | build/obj
	$(CC) $(WARN) $(CPPFLAGS) $(INIH_CFLAGS) $(CFLAGS) $(DEPFLAGS) -c -o $@ $<

build-asan/preforkd: $(AOBJS)
	$(CC) $(ASAN_FLAGS) $(LDFLAGS) -o $@ $(AOBJS) $(LIBS)

build-asan/obj/%.o: src/%.c | build-asan/obj
	$(CC) $(WARN) $(CPPFLAGS) $(INIH_CFLAGS) $(ASAN_FLAGS) $(DEPFLAGS) -c -o $@ $<

build/obj build-asan/obj build/unit build-asan/unit build/tools:
	mkdir -p $@

# Unit tests: build/unit/test_X from tests/unit/test_X.c and its modules.
define unit_rule
build/unit/test_$(1): tests/unit/test_$(1).c $(wildcard tests/unit/*.h) $(UNIT_deps_$(1):%=src/%.c) | build/unit
	$$(CC) $$(WARN) $$(CPPFLAGS) $$(INIH_CFLAGS) $$(CFLAGS) -Itests/unit -o $$@ $$< $(UNIT_deps_$(1):%=src/%.c) $$(LIBS)
build-asan/unit/test_$(1): tests/unit/test_$(1).c $(wildcard tests/unit/*.h) $(UNIT_deps_$(1):%=src/%.c) | build-asan/unit
	$$(CC) $$(WARN) $$(CPPFLAGS) $$(INIH_CFLAGS) $$(ASAN_FLAGS) -Itests/unit -o $$@ $$< $(UNIT_deps_$(1):%=src/%.c) $$(LIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_rule,$(t))))

build/tools/%: tests/tools/%.c tests/tools/tool.h | build/tools
	$(CC) $(WARN) $(CPPFLAGS) $(CFLAGS) -o $@ $< -lm

build/tools/keydump: tests/tools/keydump.c $(KEYDUMP_SRCS) $(wildcard $(KEYDUMP_SRCS:.c=.h)) | build/tools
	$(CC) $(WARN) $(CPPFLAGS) $(INIH_CFLAGS) $(CFLAGS) -o $@ $< $(KEYDUMP_SRCS) $(LIBS)

# Install what is missing: as root with apt-get (saying so), otherwise print
# the command to run.
deps:
	@$(call ensure_pkgs,$(BUILD_DEPS))
deps-test:
	@$(call ensure_pkgs,$(BUILD_DEPS) $(TEST_DEPS))
deps-bench:
	@$(call ensure_pkgs,$(BUILD_DEPS) python3 $(BENCH_DEPS))

# $(2) = optional: a user who is not root is told the command and goes on.
define ensure_pkgs
missing=""; for p in $(1); do \
	dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
done; \
if [ -n "$$missing" ]; then \
	if [ "$$(id -u)" = 0 ]; then \
		echo "preforkd: installing missing packages:$$missing (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	else \
		echo "preforkd: missing packages:$$missing"; \
		echo "run: sudo apt-get install$$missing"; [ "$(2)" = optional ] || exit 1; \
	fi; \
fi
endef

# The quick start (README) talks to it with nc, which the daemon does not need.
run:
	@$(call ensure_pkgs,$(BUILD_DEPS))
	@$(call ensure_pkgs,netcat-openbsd,optional)
	$(MAKE) --no-print-directory build/preforkd
	./build/preforkd -c conf/preforkd.conf

check: deps-test
	$(MAKE) --no-print-directory build/preforkd $(TOOLS:%=build/tools/%) $(UNIT_TESTS:%=build/unit/test_%)
	$(MAKE) --no-print-directory check-unit check-integration

check-unit:
	@prove -e '' $(UNIT_TESTS:%=build/unit/test_%)

check-integration:
	PREFORKD=$(CURDIR)/build/preforkd PFLOAD=$(CURDIR)/build/tools/pfload \
	    $(PYTEST) -q -p no:cacheprovider tests/integration

check-asan: deps-test
	$(MAKE) --no-print-directory build-asan/preforkd $(TOOLS:%=build/tools/%) $(UNIT_TESTS:%=build-asan/unit/test_%)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    prove -e '' $(UNIT_TESTS:%=build-asan/unit/test_%)
	PREFORKD=$(CURDIR)/build-asan/preforkd PFLOAD=$(CURDIR)/build/tools/pfload PREFORKD_ASAN=1 \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(PYTEST) -q -p no:cacheprovider tests/integration

# Side by side with HAProxy and nginx on loopback: tests/bench/results/LATEST.md.
# BENCH_ARGS: more bench.py options, e.g. BENCH_ARGS='--pf-variant base:bin=/tmp/pf-base'
# (another preforkd binary side by side, with its ratios to this build).
bench: deps-bench
	$(MAKE) --no-print-directory build/preforkd $(TOOLS:%=build/tools/%)
	$(PYTHON) tests/bench/bench.py $(BENCH_ARGS)

bench-quick: deps-bench
	$(MAKE) --no-print-directory build/preforkd $(TOOLS:%=build/tools/%)
	$(PYTHON) tests/bench/bench.py --quick $(BENCH_ARGS)

# 100,000 idle echo connections held and verified: tests/bench/results/SCALE.md.
bench-scale:
	@$(call ensure_pkgs,$(BUILD_DEPS) python3 iproute2)
	$(MAKE) --no-print-directory build/preforkd build/tools/pfload
	$(PYTHON) tests/bench/scale.py

# dispatch = notify, reuseport, handoff side by side: tests/bench/results/DISPATCH.md.
bench-dispatch:
	@$(call ensure_pkgs,$(BUILD_DEPS) python3)
	$(MAKE) --no-print-directory build/preforkd build/tools/pfload
	$(PYTHON) tests/bench/dispatch.py

# Proxy connect rate with one source address and with eight: tests/bench/results/SOURCE.md.
bench-source:
	@$(call ensure_pkgs,$(BUILD_DEPS) python3)
	$(MAKE) --no-print-directory build/preforkd $(TOOLS:%=build/tools/%)
	$(PYTHON) tests/bench/source.py

# Reloads, a worker SIGKILL, SIGTERM and a master SIGKILL under churn and held
# connections through echo and proxy, for about SOAK_SECONDS: tests/soak/soak.py.
SOAK_SECONDS ?= 60
.PHONY: soak
soak:
	@$(call ensure_pkgs,$(BUILD_DEPS) python3 procps)
	$(MAKE) --no-print-directory build/preforkd build/tools/pfload build/tools/refecho
	PREFORKD=$(CURDIR)/build/preforkd PFLOAD=$(CURDIR)/build/tools/pfload \
	    REFECHO=$(CURDIR)/build/tools/refecho $(PYTHON) tests/soak/soak.py --seconds $(SOAK_SECONDS)

# Fuzzing: clang's libFuzzer with ASan+UBSan, harnesses in tests/fuzz, seed
# corpora in tests/fuzz/corpus/NAME (read only); what a run finds goes to
# build-fuzz/corpus/NAME, a crashing input to build-fuzz/crash-*.
FUZZ_SECONDS ?= 60
FUZZ_CC	 = clang
FUZZ_FLAGS = -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_TARGETS = proxyproto config control http cidr
FUZZ_deps_cidr = cidr
FUZZ_args_cidr = -max_len=4096
FUZZ_deps_proxyproto = proxyproto
FUZZ_deps_control = ctlcmd
FUZZ_deps_config = config confkey cidr cidrlist net log
FUZZ_deps_http = httpreq
FUZZ_args_proxyproto = -max_len=640
FUZZ_args_config = -max_len=4096 -dict=tests/fuzz/config.dict
FUZZ_args_control = -max_len=1024
FUZZ_args_http = -max_len=9000 -dict=tests/fuzz/http.dict

define fuzz_rule
build-fuzz/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(FUZZ_deps_$(1):%=src/%.c) $(FUZZ_deps_$(1):%=src/%.h) | build-fuzz
	$$(FUZZ_CC) $$(WARN) $$(CPPFLAGS) $$(INIH_CFLAGS) $$(FUZZ_FLAGS) -o $$@ $$< $(FUZZ_deps_$(1):%=src/%.c) $$(LIBS) -ldl
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

build-fuzz:
	mkdir -p $@

# One harness for FUZZ_SECONDS; on failure the end of its log and where it is.
define fuzz_run
mkdir -p build-fuzz/corpus/$(1); echo "== fuzz_$(1) for $(FUZZ_SECONDS) s"; \
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    build-fuzz/fuzz_$(1) $(FUZZ_args_$(1)) -max_total_time=$(FUZZ_SECONDS) \
    -timeout=10 -print_final_stats=1 -artifact_prefix=build-fuzz/ \
    build-fuzz/corpus/$(1) tests/fuzz/corpus/$(1) 2>build-fuzz/fuzz_$(1).log || \
    { tail -n 60 build-fuzz/fuzz_$(1).log; echo "fuzz_$(1) failed: build-fuzz/fuzz_$(1).log"; exit 1; }; \
grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' build-fuzz/fuzz_$(1).log || true
endef

.PHONY: fuzz
fuzz:
	@$(call ensure_pkgs,$(BUILD_DEPS) clang libclang-rt-14-dev)
	$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=build-fuzz/fuzz_%)
	@set -e; $(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t));)

install: build/preforkd
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/preforkd
	install -m 755 build/preforkd $(DESTDIR)$(SBINDIR)/preforkd
	install -m 644 man/preforkd.8 $(DESTDIR)$(MANDIR)/man8/preforkd.8
	install -m 644 man/preforkd.conf.5 $(DESTDIR)$(MANDIR)/man5/preforkd.conf.5
	install -m 644 systemd/preforkd.service $(DESTDIR)$(UNITDIR)/preforkd.service
	install -m 644 systemd/preforkd.socket $(DESTDIR)$(UNITDIR)/preforkd.socket
	[ -e $(DESTDIR)$(SYSCONFDIR)/preforkd/preforkd.conf ] || \
	    install -m 644 conf/preforkd.conf $(DESTDIR)$(SYSCONFDIR)/preforkd/preforkd.conf

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/preforkd $(DESTDIR)$(MANDIR)/man8/preforkd.8 \
	    $(DESTDIR)$(MANDIR)/man5/preforkd.conf.5 $(DESTDIR)$(UNITDIR)/preforkd.service \
	    $(DESTDIR)$(UNITDIR)/preforkd.socket
	cmp -s conf/preforkd.conf $(DESTDIR)$(SYSCONFDIR)/preforkd/preforkd.conf && \
	    rm -f $(DESTDIR)$(SYSCONFDIR)/preforkd/preforkd.conf; \
	rmdir $(DESTDIR)$(SYSCONFDIR)/preforkd 2>/dev/null; true

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJS:.o=.d) $(AOBJS:.o=.d)
