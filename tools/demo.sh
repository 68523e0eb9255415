#!/usr/bin/env bash
# The zkcohort story on a local anvil chain: a hospital commits to a synthetic cohort, proves
# a sponsor's query, and the generated Solidity verifier checks the proof on-chain.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release/zkcohort
BINS=node_modules/.bin
DATA=demo-data
PORT=${ZKCOHORT_DEMO_PORT:-8546}
RPC=http://127.0.0.1:$PORT
# anvil's first well-known dev account: never use outside a local chain.
KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80
QUERY=examples/query-e11-hba1c.json
RECORDS=${ZKCOHORT_DEMO_RECORDS:-400}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
started=$(date +%s)
rm -rf "$DATA" && mkdir -p "$DATA"

step "Hospital: synthesise $RECORDS patient records and commit to them"
$BIN dataset synth --records "$RECORDS" --seed 7 --sites 3 --out "$DATA/hospital"
$BIN dataset commit --dataset "$DATA/hospital"

step "Setup: universal (dev) params, keys and the Solidity verifier for this circuit"
$BIN setup --dataset "$DATA/hospital" --verifier-out "$DATA/DemoVerifier.sol" --verifier-name DemoVerifier

step "Sponsor's query"
cat "$QUERY"
echo
$BIN query check --query "$QUERY" --dataset "$DATA/hospital"

step "Hospital: prove the query against its commitment"
$BIN prove --dataset "$DATA/hospital" --query "$QUERY" --out "$DATA/proof.json"

step "Regulator: verify the artifact offline"
$BIN verify "$DATA/proof.json"

step "Chain: start anvil, deploy the generated verifier, verify on-chain"
$BINS/anvil --port "$PORT" --silent &
ANVIL=$!
trap 'kill $ANVIL 2>/dev/null || true' EXIT
for _ in $(seq 50); do $BINS/cast block-number --rpc-url "$RPC" >/dev/null 2>&1 && break; sleep 0.2; done
VERIFIER=$($BINS/forge create "$DATA/DemoVerifier.sol:DemoVerifier" --rpc-url "$RPC" --private-key "$KEY" --broadcast 2>&1 | awk '/Deployed to:/ {print $3}')
echo "verifier deployed at $VERIFIER ($(( ($($BINS/cast codesize "$VERIFIER" --rpc-url "$RPC")) )) bytes)"
CALLDATA=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["calldata"])' "$DATA/proof.json")
TX=$($BINS/cast send "$VERIFIER" "$CALLDATA" --rpc-url "$RPC" --private-key "$KEY" --gas-limit 2000000 --json)
GAS=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["status"]=="0x1", r; print(int(r["gasUsed"],16))' "$TX")
echo "on-chain verification succeeded: $GAS gas (transaction incl. calldata)"
# Claim one more patient than proven: add 1 to the `count` public input (4th word from the end
# of the instances).
BAD=$(python3 -c '
import json, sys
a = json.load(open(sys.argv[1])); n = len(a["instances"]); i = 2 + 64 * (n - 4)
data = a["calldata"]; word = int(data[i:i + 64], 16) + 1
print(data[:i] + format(word, "064x") + data[i + 64:])' "$DATA/proof.json")
# (`cast call` exits 0 on an empty revert, so send it and read the receipt's status.)
STATUS=$($BINS/cast send "$VERIFIER" "$BAD" --rpc-url "$RPC" --private-key "$KEY" --gas-limit 2000000 --json 2>/dev/null \
  | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["status"])')
[ "$STATUS" = "0x0" ] || { echo "tampered public input was ACCEPTED: this is a bug"; exit 1; }
echo "tampered public input (count + 1) rejected by the verifier"

step "Done in $(( $(date +%s) - started ))s"
