#!/usr/bin/env bash
# One-shot measurement of setup (params + keygen) and proving for N synthetic records, with wall
# time and peak memory from /usr/bin/time. Usage: tools/measure.sh N [workdir]
set -euo pipefail
cd "$(dirname "$0")/.."
N=$1
W=${2:-demo-data/measure-$N}
BIN=target/release/zkcohort
rm -rf "$W" && mkdir -p "$W"
$BIN dataset synth --records "$N" --seed 1 --sites 4 --out "$W/data" >/dev/null
$BIN dataset commit --dataset "$W/data" >/dev/null
for phase in setup prove; do
  if [ $phase = setup ]; then args=(setup --dataset "$W/data"); else args=(prove --dataset "$W/data" --query examples/query-e11-hba1c.json --out "$W/proof.json"); fi
  /usr/bin/time -f "$phase N=$N wall=%es peak_rss=%MKB" $BIN --json "${args[@]}" > "$W/$phase.json" 2> "$W/$phase.err" || { cat "$W/$phase.err"; exit 1; }
  tail -1 "$W/$phase.err"
done
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); p=json.load(open(sys.argv[2])); print("circuit", s["circuit_id"], "advice", s["advice_columns"], "lookup", s["lookup_columns"], "prove_seconds %.1f" % p["prove_seconds"], "records/s %.1f" % (int(sys.argv[3]) / p["prove_seconds"]))' "$W/setup.json" "$W/prove.json" "$N"
