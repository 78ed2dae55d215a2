# Targets for developers and CI. `make help` lists them.
GO      ?= go
BIN     := bin
KUMO    := $(BIN)/kumo
PKGS    := ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(KUMO): tools/go.mod tools/go.sum
	@echo "building the kumo emulator into $(KUMO) (several minutes on a cold cache)"
	$(GO) build -C tools -o ../$(KUMO) github.com/sivchari/kumo/cmd/kumo

.PHONY: tools
tools: $(KUMO) ## build the emulator (kumo) from the tools module

.PHONY: build
build: ## build worker, redeemer, approvals and the development harness approvals-dev into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/...

.PHONY: dev
dev: build $(KUMO) ## run everything locally (emulated AWS) with an inbox page; Ctrl-C stops it
	$(BIN)/approvals-dev dev

# What the tests and benchmarks run besides Go and the emulator, each
# installed from Debian when its command is missing. A test that runs a
# command needs it here and in setup's prerequisites.
.PHONY: chromium promtool wrk npm
chromium: # the browser test (e2e), with the fonts its screenshots use
	./scripts/apt-install.sh chromium chromium fonts-dejavu-core
promtool: # the Prometheus rule and metric checks (deploy/check)
	./scripts/apt-install.sh promtool prometheus
wrk: # the redeemer saturation runs (internal/bench, and its test)
	./scripts/apt-install.sh wrk wrk
npm: # Node.js for the CDK constructs and asl-validator (deploy/cdk)
	./scripts/apt-install.sh npm nodejs npm

# deploy/cdk's packages (aws-cdk-lib, the cdk CLI, TypeScript,
# asl-validator), exactly as its lock file pins them. npm ci writes
# node_modules/.package-lock.json, which stands for the whole tree here.
CDK := deploy/cdk
$(CDK)/node_modules/.package-lock.json: $(CDK)/package.json $(CDK)/package-lock.json | npm
	cd $(CDK) && npm ci --no-audit --no-fund
	@touch $@

.PHONY: setup
setup: $(KUMO) chromium promtool wrk $(CDK)/node_modules/.package-lock.json ## install what the tests need: the emulator, chromium, promtool, wrk, deploy/cdk's npm packages

.PHONY: test
test: setup test-deploy ## run every test (unit, integration against kumo, end to end in a browser) with the race detector
	$(GO) test -race -count=1 $(PKGS)

.PHONY: test-deploy
test-deploy: $(KUMO) promtool $(CDK)/node_modules/.package-lock.json ## check deploy/ (template, state machines, CDK constructs, rules, dashboard) against the code; installs promtool and deploy/cdk's npm packages if missing
	cd deploy/check && $(GO) vet ./... && $(GO) test -count=1 ./...

.PHONY: screenshots
screenshots: setup ## refresh docs/*.png from the current templates (a real browser run)
	$(GO) test -count=1 -run 'TestBrowserApprove' ./e2e/ -args -update-screenshots

.PHONY: lint
lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

.PHONY: bench
bench: build $(KUMO) wrk ## load and micro benchmarks (about 4 minutes); writes the table into BENCHMARKS.md
	$(BIN)/approvals-dev bench -write BENCHMARKS.md

# Fuzz targets as package:Target; each runs FUZZTIME after its committed
# corpus (testdata/fuzz/) passes. New crashers land in testdata/fuzz/ too.
# Keep fuzz inputs short (FuzzLinkRoute writes {link} for a 2 KB valid link):
# each new-coverage input is minimized in time quadratic in its length, and
# the worker runs nothing else meanwhile.
FUZZ_TARGETS := ./link:FuzzOpen ./link:FuzzDecodeClaims ./worker:FuzzDecodeRequest ./worker:FuzzBuiltinRenderMatches \
	./worker:FuzzScan ./worker:FuzzActionAndOutput \
	./redeemer:FuzzLinkRoute ./redeemer:FuzzReadComment ./redeemer:FuzzJSONCallback ./redeemer:FuzzCompiledPages \
	./identity:FuzzVerify
FUZZTIME     ?= 10s

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 10s); CI runs it after make test
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

.PHONY: soak
soak: build $(KUMO) ## faults, worker and redeemer kills, duplicate deliveries and 2-of-3 requests over 2,000 executions (about 5 minutes); writes the ledger into RELIABILITY.md
	$(BIN)/approvals-dev soak -write RELIABILITY.md

GOVULNCHECK := golang.org/x/vuln/cmd/govulncheck@v1.9.0

.PHONY: vulncheck
vulncheck: ## known vulnerabilities in the code's call graph (needs vuln.go.dev; not part of make test)
	$(GO) run $(GOVULNCHECK) ./...

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN)
