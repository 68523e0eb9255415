# zkcohort: `make demo` runs the whole story, `make test` runs every test. Both install what
# they need (npm packages for Foundry/solc, crates via cargo) on a fresh machine.

FORGE := node_modules/.bin/forge
CARGO ?= cargo
BIN := target/release/zkcohort

.PHONY: all setup build test test-rust test-contracts lint demo bench clean

all: build

# Foundry (forge/anvil/cast), the wasm solc and forge-std are pinned in package-lock.json.
setup: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: setup
	$(CARGO) build --release --locked

test: build lint test-rust test-contracts

# Unit tests, MockProver soundness tests and real-proof end-to-end tests. The end-to-end suite
# also refreshes the verifier and proof fixture that test-contracts checks on-chain.
test-rust: build
	$(CARGO) test --release --locked --workspace

test-contracts: setup
	$(FORGE) test --gas-report

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings
	$(FORGE) fmt --check

demo: build
	bash tools/demo.sh

# Criterion benchmark of proving (see docs/benchmarks.md). ZKCOHORT_BENCH_SIZES=1000,4000,16000
bench: build
	$(CARGO) bench --locked -p zkcohort --bench prove

clean:
	rm -rf target out cache .zkcohort demo-data
