# tgsafety build and test entry points. `make test` is what CI runs (.ci/run):
# it installs what the tests need (Debian's prometheus package for promtool,
# python3-telethon and the pinned npm client libraries for the conformance
# suite) and runs every test with the race detector.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT   ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
FUZZTIME    ?= 10s
BENCHCOUNT  ?= 10
# The conformance suite's client programs and npm project (docs/clients.md).
CLIENTS     := testserver/conformance/clients
# apt-get needs root; use sudo when not root and sudo exists.
SUDO        := $(shell [ "$$(id -u)" = 0 ] || command -v sudo)

.PHONY: all test deps unit fuzz bench lint demo dashboards

all: lint test

## test: install test dependencies, run every test (race detector on) and a short fuzz pass.
test: deps unit fuzz

## deps: Debian packages the tests use (promtool from prometheus; python3-telethon, node and npm
## for the conformance suite; one apt-get update) and the suite's npm clients, pinned by their
## lockfile (docs/clients.md).
deps:
	@missing=""; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	/usr/bin/python3 -c 'import telethon' >/dev/null 2>&1 || missing="$$missing python3-telethon"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
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

unit:
	TGSAFETY_REQUIRE_PROMTOOL=1 TGSAFETY_REQUIRE_CLIENTS=1 $(GO) test -race -count=1 ./...

## fuzz: run each fuzz target briefly (FUZZTIME); longer runs: make fuzz FUZZTIME=10m.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./monitor/signal
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./monitor/limits
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./monitor/spambot
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./monitor/jsonbody
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./monitor/yamlnode
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./scenarios

## bench: benchmarks with -count, summarised by benchstat (docs/performance.md).
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCHCOUNT) ./... > bench.out
	$(GO) run $(BENCHSTAT) bench.out

## lint: gofmt, go vet and staticcheck (pinned).
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$out" ] || { echo "gofmt needed:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## dashboards: regenerate the Grafana dashboards and alert rules in dashboards/generated/ (commit them).
dashboards:
	$(GO) run ./dashboards/gen dashboards/generated

## demo: the daemon monitoring 12 simulated accounts on the in-process test server; a simulated day in ~3 minutes.
## Flags go in DEMOFLAGS, e.g. make demo DEMOFLAGS="--accounts 24 --speed 1000".
DEMOFLAGS ?=
demo:
	$(GO) run ./cmd/safetyd demo $(DEMOFLAGS)
