#!/usr/bin/env bash
# The cargo feature flags for this machine, one place for the Makefile and tools/bench-large.sh
# (so every build on a machine is the same build): `--features asm` (halo2curves' assembly field
# arithmetic, ~11% faster proving: docs/benchmarks.md) on an x86_64 CPU whose /proc/cpuinfo lists
# ADX and BMI2, which that assembly uses unconditionally (a CPU without them would stop with
# SIGILL); nothing elsewhere. Proofs, keys and verifiers are the same either way.
if [ "$(uname -m)" = x86_64 ] && grep -qw adx /proc/cpuinfo 2>/dev/null \
  && grep -qw bmi2 /proc/cpuinfo 2>/dev/null; then
  echo "--features asm"
fi
