#!/usr/bin/env bash
# Alternates two bus_bench binaries and prints each pair's ev/s ratio and the median:
# on a shared VM only ratios from interleaved runs say much.
#   bash bench/bus/ab.sh OLD_BINARY NEW_BINARY [ROUNDS=5] [MODE=--catch-up]
set -euo pipefail
old=$1 new=$2 rounds=${3:-5} mode=${4:---catch-up}
rate() { "$1" "$mode" | grep -oE '= [0-9]+ ev/s' | grep -oE '[0-9]+' | head -1; }
ratios=()
for _ in $(seq "$rounds"); do
  a=$(rate "$old")
  b=$(rate "$new")
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')
  echo "old $a ev/s  new $b ev/s  ratio $ratio"
  ratios+=("$ratio")
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END { print "median ratio " r[int((NR + 1) / 2)] }'
