#!/usr/bin/env bash
# Size and gas of a generated Solidity verifier, measured the one way we report them: compiled
# with this repository's settings (tools/solc, optimizer on, Yul off) in a scratch project,
# deployed on a scratch anvil with the EIP-170 limit lifted (so an oversized verifier is still
# measured), called with real calldata; then the same calldata with one proof byte changed must
# revert. Prints runtime bytes, the verify transaction's gas and the call's gas
# (tx − 21,000 − calldata gas).
# usage: tools/verifier-gas.sh VERIFIER.sol CALLDATA.hex
# (the fast-circuit bench writes both: ZKCOHORT_FAST_SOL=… and ZKCOHORT_FAST_CALLDATA=…)
set -euo pipefail
SOL=$(realpath "$1"); CD=$(realpath "$2")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NM=$ROOT/node_modules/@foundry-rs
FORGE=$NM/forge-linux-amd64/bin/forge; CAST=$NM/cast-linux-amd64/bin/cast; ANVIL=$NM/anvil-linux-amd64/bin/anvil
W=$(mktemp -d); trap 'kill $APID 2>/dev/null || true; rm -rf "$W"' EXIT
mkdir -p "$W/src" && cp "$SOL" "$W/src/Verifier.sol"
cat > "$W/foundry.toml" <<TOML
[profile.default]
src = "src"
out = "out"
solc = "$ROOT/tools/solc"
offline = true
auto_detect_solc = false
evm_version = "paris"
optimizer = true
optimizer_runs = 200
[profile.default.optimizer_details]
yul = false
TOML
(cd "$W" && "$FORGE" build --sizes 2>/dev/null || true) | awk -F'|' '/Halo2Verifier/ {gsub(/ /,"",$3); print "runtime bytes " $3 " (EIP-170 limit 24,576)"}'
PORT=$((20000 + RANDOM % 20000)); RPC=http://127.0.0.1:$PORT
"$ANVIL" --disable-code-size-limit --port $PORT >/dev/null 2>&1 & APID=$!
for _ in $(seq 50); do "$CAST" chain-id --rpc-url $RPC >/dev/null 2>&1 && break; sleep 0.2; done
KEY=0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80   # anvil dev key 0
BC=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['bytecode']['object'])" "$W/out/Verifier.sol/Halo2Verifier.json")
ADDR=$("$CAST" send --rpc-url $RPC --private-key $KEY --create "$BC" --json | python3 -c "import json,sys;print(json.load(sys.stdin)['contractAddress'])")
DATA=$(tr -d '[:space:]' < "$CD")
"$CAST" send --rpc-url $RPC --private-key $KEY "$ADDR" "$DATA" --json | python3 -c "
import json,sys
d=json.load(sys.stdin); tx=int(d['gasUsed'],16); assert d['status']=='0x1', 'verify reverted'
b=bytes.fromhex('$DATA'[2:]); z=b.count(0); cg=16*(len(b)-z)+4*z
print(f'verify tx {tx} gas, calldata {len(b)} B ({cg} gas), call {tx-21000-cg} gas')"
BAD=$(python3 -c "d='$DATA'; i=len(d)-100; print(d[:i]+('0' if d[i]!='0' else '1')+d[i+1:])")
if "$CAST" send --rpc-url $RPC --private-key $KEY --gas-limit 3000000 "$ADDR" "$BAD" --json 2>/dev/null \
  | python3 -c "import json,sys; sys.exit(0 if json.load(sys.stdin)['status']=='0x1' else 1)"; then
  echo "error: a tampered proof was accepted"; exit 1
fi
echo "tampered proof: rejected"
