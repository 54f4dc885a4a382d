# tgsafety build and test entry points. `make test` is what CI runs (.ci/run):
# it installs what the tests need (Debian's prometheus package for promtool,
# python3-telethon and the pinned npm client libraries for the conformance
# suite), builds the programs once (bin/), and runs every test with the race
# detector.

SHELL       := /bin/bash
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
# FUZZTIME is a count of inputs per fuzz target, not a duration: Go 1.26's
# fuzz coordinator can fail a time-bound run with its own "context deadline
# exceeded" at the deadline (golang/go#75804, fixed in Go 1.27), and a count
# is the same work on any machine. Long runs: make fuzz FUZZTIME=2000000x.
FUZZTIME    ?= 20000x
FUZZMINIMIZE ?= 2000x
BENCHCOUNT  ?= 10
# TESTTIMEOUT bounds one package's tests: sized for a cold, loaded 2-core
# machine (the race build of gotd alone takes minutes there).
TESTTIMEOUT ?= 45m
BINDIR      ?= $(CURDIR)/bin
PREFIX      ?= /usr/local
# VERSION is what `safetyd version`, /healthz and build_info report.
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -X main.version=$(VERSION)
# The conformance suite's client programs and npm project (docs/clients.md).
CLIENTS     := testserver/conformance/clients
# apt-get needs root; use sudo when not root and sudo exists.
SUDO        := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

.PHONY: all build install test test-cold deps testbin unit fuzz bench lint demo dashboards

all: lint test

## build: the programs, in bin/ (safetyd, scenario-run).
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BINDIR)/ ./cmd/safetyd ./cmd/scenario-run

## install: build, then install the programs into $(PREFIX)/bin (default /usr/local/bin).
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(BINDIR)/safetyd $(BINDIR)/scenario-run $(DESTDIR)$(PREFIX)/bin/

## test: install test dependencies, build the programs once (race detector on, in bin/race), run every test
## (race detector on) and a short fuzz pass.
test: deps testbin unit fuzz

# The programs the tests run as processes (monitor/testbin), built with the
# race detector: they are checked for races too, and they share every
# compiled package with the race-enabled test binaries, so that a cold
# machine compiles gotd's large tg package once for both, not twice.
TESTBINDIR ?= $(BINDIR)/race
testbin:
	$(GO) build -race -ldflags '$(LDFLAGS)' -o $(TESTBINDIR)/ ./cmd/safetyd ./cmd/scenario-run

## test-cold: make test as a newcomer's first run: a fresh clone of HEAD (commit first), empty Go
## module and build caches; LOAD=N runs N CPU-burning processes alongside. Prints the wall time.
LOAD ?= 0
test-cold:
	@tmp=$$(mktemp -d); git clone -q . $$tmp/src || exit 1; \
	burners=""; for i in $$(seq 1 $(LOAD)); do sh -c 'while :; do :; done' & burners="$$burners $$!"; done; \
	start=$$(date +%s); \
	( cd $$tmp/src && GOCACHE=$$tmp/gocache GOMODCACHE=$$tmp/gomod GOFLAGS=-modcacherw $(MAKE) test ) 2>&1 | tee $$tmp/test-cold.log; rc=$${PIPESTATUS[0]}; \
	[ -z "$$burners" ] || kill $$burners; \
	echo "test-cold: make test exited $$rc after $$(( $$(date +%s) - start )) s (LOAD=$(LOAD), $$(nproc) cores); log: $$tmp/test-cold.log"; \
	rm -rf $$tmp/src $$tmp/gocache $$tmp/gomod; exit $$rc

## deps: Debian packages the tests use (promtool from prometheus; python3-telethon, node and npm
## for the conformance suite; postgresql for the PostgreSQL store's tests; one apt-get update) and the suite's npm clients, pinned by their
## lockfile (docs/clients.md).
deps:
	@missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	/usr/bin/python3 -c 'import telethon' >/dev/null 2>&1 || missing="$$missing python3-telethon"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ] && ! command -v apt-get >/dev/null 2>&1; then \
		echo "make test needs:$$missing (promtool and prometheus 2.x, Telethon 1.25 for /usr/bin/python3, Node 20 with npm, PostgreSQL 14 or later: initdb and postgres) and found no apt-get to install them:"; \
		echo "install them with your package manager, then run make test again."; \
		exit 1; \
	fi; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing (Debian's prometheus and postgresql also enable services, which the tests do not use: they start their own throwaway PostgreSQL)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@promtool --version 2>&1 | head -1
	@/usr/bin/python3 -c 'import telethon; print("telethon", telethon.__version__)'
	@$(MAKE) --no-print-directory $(CLIENTS)/node_modules/.installed

# The conformance suite's JavaScript clients: npm ci installs exactly the
# lockfile; --ignore-scripts because the suite needs no native addon (mtcute
# runs on MemoryStorage, not better-sqlite3).
$(CLIENTS)/node_modules/.installed: $(CLIENTS)/package.json $(CLIENTS)/package-lock.json
	cd $(CLIENTS) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

# The tests that run the programs as processes take them from bin/race
# (monitor/testbin), so nothing is compiled inside a test. -ldflags=-w
# leaves DWARF out of the 31 test binaries (stack traces keep their
# symbols): most of them link gotd's large tg package, and on a cold
# 2-core machine linking them is minutes.
unit:
	@# The pure packages where an int-size bug lives build for 32 bits too
	@# (make lint builds everything for 386; that takes gotd with it).
	GOARCH=386 CGO_ENABLED=0 $(GO) build ./monitor/signal ./monitor/limits ./monitor/phone ./monitor/spambot
	TGSAFETY_REQUIRE_PROMTOOL=1 TGSAFETY_REQUIRE_CLIENTS=1 TGSAFETY_REQUIRE_POSTGRES=1 TGSAFETY_BIN_DIR=$(TESTBINDIR) $(GO) test -race -count=1 -timeout $(TESTTIMEOUT) -ldflags=-w ./...

## fuzz: run each fuzz target on FUZZTIME inputs (a count); longer runs: make fuzz FUZZTIME=2000000x.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./monitor/signal
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./monitor/limits
	$(GO) test -run '^$$' -fuzz '^FuzzFormatDuration$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./monitor/limits
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./monitor/spambot
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./monitor/jsonbody
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./monitor/yamlnode
	$(GO) test -run '^$$' -fuzz '^FuzzDigits$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./monitor/phone
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./scenarios
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./testserver/internal/tlschema
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./testserver/internal/tlschema
	$(GO) test -run '^$$' -fuzz '^FuzzOldRSAConn$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./testserver
	$(GO) test -run '^$$' -fuzz '^FuzzParsePlan$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./scenarios/audit
	$(GO) test -run '^$$' -fuzz '^FuzzStripWrappers$$' -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) ./testserver

## bench: benchmarks with -count, summarised by benchstat (docs/performance.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) ./... > bench.out
	$(GO) run $(BENCHSTAT) bench.out

## lint: gofmt, go vet, a 32-bit build (int is 32 bits there) and staticcheck (pinned).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	GOARCH=386 $(GO) build ./...
	$(GO) run $(STATICCHECK) ./...

## dashboards: regenerate the Grafana dashboards and alert rules in dashboards/generated/ (commit them).
dashboards:
	$(GO) run ./dashboards/gen dashboards/generated

## demo: the daemon monitoring 12 simulated accounts on the in-process test server; a simulated day in ~3 minutes.
## Flags go in DEMOFLAGS, e.g. make demo DEMOFLAGS="--accounts 24 --speed 1000".
DEMOFLAGS ?=
demo:
	@[ -x $(BINDIR)/safetyd ] || echo "building safetyd first (about 4 minutes on a fresh 2-core machine: gotd's Telegram API code is large)..."
	@$(GO) build -ldflags '$(LDFLAGS)' -o $(BINDIR)/ ./cmd/safetyd
	@$(BINDIR)/safetyd demo $(DEMOFLAGS)
