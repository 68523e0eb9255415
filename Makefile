# zkcohort: `make demo` runs the whole story, `make test` runs every test. Both install what
# they need (npm packages for Foundry/solc, crates via cargo) on a fresh machine.

# Native linux-x64 binaries from npm (see package.json).
FORGE := node_modules/@foundry-rs/forge-linux-amd64/bin/forge
CARGO ?= cargo
# `--features asm` where the CPU has ADX and BMI2 (tools/cargo-features.sh): every cargo command
# below takes the same flags, so they share one build.
CARGO_FLAGS := --locked $(shell tools/cargo-features.sh)
BIN := target/release/zkcohort

.PHONY: all setup contracts build test test-rust test-contracts lint slither abi gas gas-report fixtures demo bench clean report-screenshot

all: build

# Foundry (forge/anvil/cast), the wasm solc and forge-std are pinned in package-lock.json.
setup: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: setup contracts
	$(CARGO) build --release $(CARGO_FLAGS)

# The wasm solc fails (out of memory, or spins) on one job holding every source, which is what
# a fresh clone's first forge build is, and on a job holding several test files that import the
# generated verifiers. Build in steps, each its own compiler job; later forge commands (test,
# inspect, the deploy script) then find the cache warm.
FORGE_STEPS = $(wildcard contracts/verifiers/*.sol) contracts script \
	$(wildcard test/utils/*.sol) $(wildcard test/*.sol)
FORGE_BUILD_STEPS = for p in $(FORGE_STEPS); do echo "forge build $$p"; $(FORGE) build $$p >/dev/null || { $(FORGE) build $$p; exit 1; }; done
contracts: setup
	@$(FORGE_BUILD_STEPS)

# Ends by checking that the tests left the work tree as they found it (nothing rewritten,
# nothing generated outside ignored paths): an error under CI (CI=true, a fresh clone), a
# warning locally, where uncommitted work is expected.
test: build lint test-rust test-contracts
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  dirty="$$(git status --porcelain)"; \
	  if [ -n "$$dirty" ]; then \
	    case "$$CI" in \
	      true|1) echo "error: make test left the work tree dirty (tests must not write tracked or unignored files):"; \
	              echo "$$dirty"; exit 1;; \
	      *) echo "warning: the work tree is not clean after make test (fine if these are your own edits):"; \
	         echo "$$dirty";; \
	    esac; \
	  fi; \
	fi

# Unit tests, MockProver soundness tests and real-proof end-to-end tests. The end-to-end and
# eligibility suites also check the committed verifiers (contracts/verifiers/) and proof
# fixtures (test/fixtures/) that test-contracts uses against what the current code generates;
# they fail on a mismatch and say to run `make fixtures`.
test-rust: build
	$(CARGO) test --release $(CARGO_FLAGS) --workspace

# Gas snapshots (vm.snapshotGas*, snapshots/*.json) are checked, not written: forge fails if a
# value differs from the committed one. Plain calls (no --gas-report, no --isolate), the one
# mode `make gas` writes them in.
# The Rust suites run the forge deploy script, which can leave forge's cache cold for the
# tests; warm it again one file at a time, or `forge test` recompiles every test in one
# job, which the wasm solc cannot hold (seen in CI: "memory access out of bounds").
test-contracts: contracts
	@$(FORGE_BUILD_STEPS)
	$(FORGE) test --gas-snapshot-check true

# Slither over contracts/ (not the generated verifiers), with the wasm solc: fails on any High or
# Medium finding without a reasoned entry in slither.triage.json (tools/slither-check.py). Its
# pinned Python packages live in a virtualenv, installed on first use (the stamp names the pins).
SLITHER_VERSION := 0.11.6
CRYTIC_COMPILE_VERSION := 0.4.2
VENV := .venv
SLITHER_STAMP := $(VENV)/.installed-slither-$(SLITHER_VERSION)-crytic-compile-$(CRYTIC_COMPILE_VERSION)
SLITHER := $(VENV)/bin/python tools/slither-check.py
$(SLITHER_STAMP):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
	  slither-analyzer==$(SLITHER_VERSION) crytic-compile==$(CRYTIC_COMPILE_VERSION)
	@rm -f $(VENV)/.installed-* && touch $@

slither: setup $(SLITHER_STAMP)
	$(SLITHER)

lint: contracts $(SLITHER_STAMP)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release $(CARGO_FLAGS) --workspace --all-targets -- -D warnings
	$(FORGE) fmt --check
	$(SLITHER)
	@for c in $(ABIS); do $(FORGE) inspect $$c abi --json | diff -q - prover/abi/$$c.json >/dev/null \
	  || { echo "prover/abi/$$c.json is stale: run make abi"; exit 1; }; done

# The Rust client's bindings (alloy sol!) are generated from these ABIs.
ABIS := QueryMarket DatasetRegistry TrialMarket AccreditationRegistry
abi: contracts
	for c in $(ABIS); do $(FORGE) inspect $$c abi --json > prover/abi/$$c.json; done

# Rewrites the committed proof fixtures and generated verifiers from the current code (the
# Rust tests only check them), then commit the result; re-run `make gas` after it. The writers
# (`writes_*`) run first and alone: the other tests of these files read verifiers.json, which
# the writers rewrite; they then run against the new files.
FIXTURE_TESTS := --test end_to_end --test eligibility --test fold_market
fixtures:
	ZKCOHORT_UPDATE_FIXTURES=1 $(CARGO) test --release $(CARGO_FLAGS) -p zkcohort $(FIXTURE_TESTS) writes_
	$(CARGO) test --release $(CARGO_FLAGS) -p zkcohort $(FIXTURE_TESTS)

# The one way to (re)write the gas snapshots (snapshots/*.json, checked by test-contracts): gas
# of a claim and an enrolment with real on-chain verification, and of each verifier alone, as
# plain calls from the test contract, so without the 21k transaction base and the calldata.
# docs/benchmarks.md quotes these numbers. Every forge test that calls vm.snapshotGas* or
# vm.snapshotValue must match GAS_TESTS, or its snapshot is never refreshed here.
GAS_TESTS := test_gas_|test_acceptsRealProof
gas: contracts
	$(FORGE) test --gas-snapshot-check false --match-test '$(GAS_TESTS)' -vv

# forge's per-function gas table. Calls are isolated (each a transaction: base cost and
# calldata included), so its numbers are higher than the snapshots; it writes no snapshot.
gas-report: contracts
	$(FORGE) test --gas-report --gas-snapshot-emit false

# Starts its own anvil, deploys with the forge script, runs three hospitals and a sponsor, and
# ends with the audit of its chain (demo-data/audit-report.{html,md,json}, path printed).
demo: build
	$(BIN) demo

# Renders an audit report (HTML) in Debian's headless chromium and writes the screenshot under
# docs/ (docs/audit.md shows it). REPORT defaults to the demo's report, which `make demo` writes;
# the committed screenshot is of the tampered test history (REPORT=target/audit/report-tampered.html,
# left by `cargo test --release -p zkcohort --test audit`). Needs `chromium` (apt-get install
# chromium); not part of `make test`. chromium exits 0 even when it writes nothing, so the file
# is checked, and it is written next to its destination then renamed (no half-written PNG).
REPORT ?= demo-data/audit-report.html
SCREENSHOT ?= docs/audit-report.png
SCREENSHOT_SIZE ?= 1200,1640
CHROMIUM ?= chromium
report-screenshot:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { echo "make report-screenshot: '$(CHROMIUM)' not found: install Debian's chromium (apt-get install chromium) or pass CHROMIUM=/path/to/chromium" >&2; exit 1; }
	@test -f "$(REPORT)" || { echo "make report-screenshot: no report at $(REPORT): run 'make demo' first, or pass REPORT=path/to/report.html" >&2; exit 1; }
	@tmp="$(abspath $(dir $(SCREENSHOT)))/.report-screenshot-$$$$.png"; rm -f "$$tmp"; \
	  $(CHROMIUM) --headless --no-sandbox --disable-gpu --hide-scrollbars \
	    --window-size=$(SCREENSHOT_SIZE) --screenshot="$$tmp" \
	    "file://$(abspath $(REPORT))" >/dev/null 2>&1; \
	  if [ -s "$$tmp" ]; then mv "$$tmp" "$(SCREENSHOT)" && echo "$(REPORT) rendered by $(CHROMIUM) → $(SCREENSHOT)"; \
	  else rm -f "$$tmp"; echo "make report-screenshot: $(CHROMIUM) wrote no screenshot of $(REPORT) (run it without >/dev/null to see why)" >&2; exit 1; fi

# Criterion benchmarks of proving and of FHIR import (see docs/benchmarks.md).
# ZKCOHORT_BENCH_SIZES=1000,4000,16000 (aggregate records), ZKCOHORT_BENCH_BATCHES=1,4,32
# (eligibility batch sizes), ZKCOHORT_BENCH_PATIENTS=1000,10000 (FHIR patients); the fast
# circuit N(W) (issue #8) at ZKCOHORT_FAST_SIZES=1000,10000 records (its default), W from
# ZKCOHORT_FAST_SLOTS (default 2). 100,000 and 1,000,000 records (one-shot, with peak RSS):
# tools/bench-large.sh, not run here (~20-40 min).
bench: build
	$(CARGO) bench $(CARGO_FLAGS) -p zkcohort --bench prove --bench eligibility --bench fhir --bench fast

clean:
	rm -rf target out cache .zkcohort demo-data
