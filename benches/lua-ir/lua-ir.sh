#!/bin/bash
# Instructions a portcullis-redis script costs inside Redis, per call: runs a throwaway
# redis-server under valgrind's callgrind, sends it N calls (gen.py), and subtracts a run of 10
# calls (start-up, loading). Counts instructions, not time: repeatable whatever else the machine
# is doing. Usage: lua-ir.sh rotation|limiter [N]   (needs valgrind, redis-server, python3)
set -euo pipefail
kind=$1; n=${2:-2000}; here=$(cd "$(dirname "$0")" && pwd); tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {
  local port=$((20000 + RANDOM % 10000))
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.%p" redis-server --port "$port" \
    --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
  python3 "$here/gen.py" "$kind" "$1" | redis-cli -p "$port" --pipe >"$tmp/pipe"
  grep -q "errors: 0" "$tmp/pipe" || { cat "$tmp/pipe" >&2; exit 1; }
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$tmp"/cg.*; rm -f "$tmp"/cg.*
}
many=$(run "$n"); few=$(run 10)
echo "$kind: $(( (many - few) / (n - 10) )) instructions per call inside Redis"
