#!/usr/bin/env bash
# Large-dataset proving of the fast aggregate circuit N(W) (issue #8), one-shot, with wall time
# and peak RSS from `/usr/bin/time -f '%e s %M KB'` per process:
#   1. 10,000 records: keygen, then one prove right after one Noir/bb prove of the same size
#      (`../shared/peers/noir-bench.sh 10000 1`, skipped if absent), so the ratio is of one run;
#   2. 100,000 records: keygen, then prove, as two processes (each phase's own peak RSS);
#   3. 1,000,000 records as CHUNKS chunks of 100,000: each chunk is another dataset (its own
#      records and salt, `ZKCOHORT_FAST_SEED=1..CHUNKS`, so its own data commitment), proven
#      with the same 100k key in its own process. One N(2) proof of 1M records would need k = 23
#      (5 rows per record) and ~30 GB, over this 24 GB machine;
#   4. only with BIG_W3=1: one proof of 1,000,000 records at W = 3 (k = 22; measured 16 GB,
#      ~18 min on shared cores, plus ~5 min keygen writing a 3.6 GB key).
# The bench binary is built once, copied to a temp dir and only the copy is run, so edits to
# the sources during the run (minutes to tens of minutes) do not change what is measured.
# Keys go to .zkcohort/fast/, dev KZG params to .zkcohort/params/ (made on first use; k = 19
# for 100k at W = 2). Prints the load average before and after (the cores may be shared), one
# line per process (wall time, peak RSS, the bench's own result line) and a summary of the
# chunks: prove time (the bench's timer, without the key read) and wall time, their total and
# median, the largest peak RSS (GB = 10^9 bytes, from time's %M KiB). Results, and the commands
# each step runs, are in docs/benchmarks.md ("Large datasets").
# usage: tools/bench-large.sh [OUT_DIR]     (logs per run in OUT_DIR, default target/bench-large)
# env: SLOTS (W, default 2), STATS (default 3), CHUNK (100000), CHUNKS (10), BIG_W3 (0),
#      NOIR (1: run the 10k Noir/bb pair), BENCH_BIN (a fast bench binary to use instead of
#      building one: `cargo bench --locked $(tools/cargo-features.sh) -p zkcohort --bench fast
#      --no-run` prints its path)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SLOTS=${SLOTS:-2}; STATS=${STATS:-3}; CHUNK=${CHUNK:-100000}; CHUNKS=${CHUNKS:-10}
BIG_W3=${BIG_W3:-0}; NOIR=${NOIR:-1}
TMP=$(mktemp -d /tmp/bench-large.XXXXXX); trap 'rm -rf "$TMP"' EXIT
OUT=${1:-$ROOT/target/bench-large}; mkdir -p "$OUT"; OUT=$(realpath "$OUT")
echo "load average before: $(cat /proc/loadavg)"

# Build once (or take BENCH_BIN, a bench binary built earlier); run only the copy.
B=$TMP/fast-bench
if [ -n "${BENCH_BIN:-}" ]; then
  cp "$BENCH_BIN" "$B"; echo "bench binary: $BENCH_BIN, run as $B"
else
  # shellcheck disable=SC2046 # the feature flags are words
  EXE=$(cd "$ROOT" && cargo bench --locked $(tools/cargo-features.sh) -p zkcohort --bench fast --no-run \
    --message-format=json-render-diagnostics | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "fast" and m.get("executable"):
        print(m["executable"])')
  [ -n "$EXE" ] || { echo "bench-large: no fast bench executable from cargo" >&2; exit 1; }
  cp "$EXE" "$B"
  echo "bench binary: $EXE (built at $(git -C "$ROOT" rev-parse --short HEAD) + work tree), run as $B"
fi

# run NAME [VAR=VALUE...]: one bench process; its output in OUT/NAME.log, time in OUT/NAME.time.
run() {
  local name=$1; shift
  env ZKCOHORT_FAST_SLOTS="$SLOTS" ZKCOHORT_FAST_STATS="$STATS" "$@" \
    /usr/bin/time -f '%e s %M KB' -o "$OUT/$name.time" "$B" >"$OUT/$name.log" 2>&1 \
    || { echo "bench-large: $name failed:" >&2; cat "$OUT/$name.log" "$OUT/$name.time" >&2; exit 1; }
  printf '%-14s %-14s peak %8.2f GB  | %s\n' "$name" "$(awk '{print $1 " s"}' "$OUT/$name.time")" \
    "$(awk '{print $3 * 1024 / 1e9}' "$OUT/$name.time")" "$(grep -E '^(prove|keygen)' "$OUT/$name.log" | tail -1)"
}
# prove_secs NAME: the prove time the bench printed ("prove 12.34 s (…)").
prove_secs() { sed -nE 's/^prove ([0-9.]+) s.*/\1/p' "$OUT/$1.log"; }

echo "== 10,000 records, W = $SLOTS"
run k10k ZKCOHORT_FAST_ONESHOT=10000 ZKCOHORT_FAST_PHASE=keygen
if [ "$NOIR" = 1 ] && [ -x "$ROOT/../shared/peers/noir-bench.sh" ]; then
  "$ROOT/../shared/peers/noir-bench.sh" 10000 1
fi
run p10k ZKCOHORT_FAST_ONESHOT=10000 ZKCOHORT_FAST_PHASE=prove

echo "== $CHUNK records, W = $SLOTS"
run k100k ZKCOHORT_FAST_ONESHOT="$CHUNK" ZKCOHORT_FAST_PHASE=keygen
run p100k ZKCOHORT_FAST_ONESHOT="$CHUNK" ZKCOHORT_FAST_PHASE=prove

echo "== $((CHUNK * CHUNKS)) records as $CHUNKS chunks of $CHUNK (one key, one dataset commitment each)"
for i in $(seq "$CHUNKS"); do
  run "chunk$i" ZKCOHORT_FAST_ONESHOT="$CHUNK" ZKCOHORT_FAST_PHASE=prove ZKCOHORT_FAST_SEED="$i"
done
for i in $(seq "$CHUNKS"); do echo "$(prove_secs "chunk$i") $(cat "$OUT/chunk$i.time")"; done | python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
prove = [float(r[0]) for r in rows]; wall = [float(r[1]) for r in rows]; kb = [int(r[3]) for r in rows]
n = int(sys.argv[1]) * len(rows)
print(f"chunks: {len(rows)}; prove total {sum(prove):.1f} s, median {statistics.median(prove):.2f} s "
      f"({n / sum(prove):.0f} records/s); wall (incl. key read) total {sum(wall):.1f} s, median "
      f"{statistics.median(wall):.2f} s ({n / sum(wall):.0f} records/s); max peak RSS {max(kb) * 1024 / 1e9:.2f} GB")
' "$CHUNK"

if [ "$BIG_W3" = 1 ]; then
  echo "== 1,000,000 records, W = 3, one proof"
  SLOTS=3 run k1m-w3 ZKCOHORT_FAST_ONESHOT=1000000 ZKCOHORT_FAST_PHASE=keygen
  SLOTS=3 run p1m-w3 ZKCOHORT_FAST_ONESHOT=1000000 ZKCOHORT_FAST_PHASE=prove
fi
echo "load average after: $(cat /proc/loadavg)"
echo "logs: $OUT"
