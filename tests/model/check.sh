#!/usr/bin/env bash
# Model-check a Promela model with spin: safety assertions and its ltl
# property under weak fairness. Fails unless pan reports no error.
set -euo pipefail
model=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
spin -a "$model" >/dev/null
cc -O2 -DNOREDUCE -w -o pan pan.c
./pan -a -f -m200000 > out.txt 2>&1 || true
grep -E "errors:|states, stored|violated|cycle" out.txt
grep -q "errors: 0" out.txt
