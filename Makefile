# zkcohort: `make demo` runs the whole story, `make test` runs every test. Both install what
# they need (npm packages for Foundry/solc, crates via cargo) on a fresh machine.

# Native linux-x64 binaries from npm (see package.json).
FORGE := node_modules/@foundry-rs/forge-linux-amd64/bin/forge
CARGO ?= cargo
BIN := target/release/zkcohort

.PHONY: all setup contracts build test test-rust test-contracts lint abi gas demo bench clean

all: build

# Foundry (forge/anvil/cast), the wasm solc and forge-std are pinned in package-lock.json.
setup: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: setup contracts
	$(CARGO) build --release --locked

# The wasm solc fails (out of memory, or spins) on one job holding every source, which is what
# a fresh clone's first forge build is. Build in steps, each its own compiler job; later forge
# commands (test, inspect, the deploy script) then find the cache warm.
FORGE_STEPS = $(wildcard contracts/verifiers/*.sol) contracts script test/utils test
contracts: setup
	@for p in $(FORGE_STEPS); do echo "forge build $$p"; $(FORGE) build $$p >/dev/null || { $(FORGE) build $$p; exit 1; }; done

test: build lint test-rust test-contracts

# Unit tests, MockProver soundness tests and real-proof end-to-end tests. The end-to-end suite
# also refreshes the verifier and proof fixture that test-contracts checks on-chain.
test-rust: build
	$(CARGO) test --release --locked --workspace

test-contracts: contracts
	$(FORGE) test --gas-report

lint: contracts
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings
	$(FORGE) fmt --check
	@for c in $(ABIS); do $(FORGE) inspect $$c abi --json | diff -q - prover/abi/$$c.json >/dev/null \
	  || { echo "prover/abi/$$c.json is stale: run make abi"; exit 1; }; done

# The Rust client's bindings (alloy sol!) are generated from these ABIs.
ABIS := QueryMarket DatasetRegistry TrialMarket
abi: contracts
	for c in $(ABIS); do $(FORGE) inspect $$c abi --json > prover/abi/$$c.json; done

# Gas of a claim with real on-chain verification and of the verifier alone, written to
# snapshots/*.json (forge test writes them too).
gas: contracts
	$(FORGE) test --match-test 'test_gas_|test_acceptsRealProof' -vv

# Starts its own anvil, deploys with the forge script, runs three hospitals and a sponsor.
demo: build
	$(BIN) demo

# Criterion benchmarks of proving (see docs/benchmarks.md). ZKCOHORT_BENCH_SIZES=1000,4000,16000
# (aggregate records), ZKCOHORT_BENCH_BATCHES=1,4,32 (eligibility batch sizes).
bench: build
	$(CARGO) bench --locked -p zkcohort --bench prove --bench eligibility

clean:
	rm -rf target out cache .zkcohort demo-data
