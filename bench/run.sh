#!/usr/bin/env bash
# Runs the platform-core benchmarks named in docs/BENCHMARKS.md on SQLite and
# PostgreSQL (when reachable) and prints the figures with the ratios the doc
# reports. Usage: bash bench/run.sh [--quick | --broker [broker.sh options]]
#   --quick  100k-entry ledger instead of 1M (the 1M build takes a minute or two)
#   --broker only the MQTT broker benchmark against mosquitto (bench/broker.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--broker" ]; then shift; exec bash bench/broker.sh "$@"; fi
export GOTOOLCHAIN=local
out=$(mktemp -d)
if [ "${1:-}" != "--quick" ]; then export FLEETWARD_BENCH_1M=1; fi

echo "== machine: $(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== ledger (appends, proofs) and raw SHA-256 in the same run"
go test -run '^$' -bench 'SHA256|AppendSingle|AppendBatch100|InclusionProof1M' -benchtime 3s -timeout 60m \
  ./internal/ledger/ | tee "$out/ledger.txt"
echo "== inventory (100k import with the real ledger, filtered list latency)"
go test -run '^$' -bench 'Import100k|ListFiltered100k' -benchtime 1x -timeout 60m \
  ./internal/inventory/ | tee "$out/inventory.txt"
go test -run '^$' -bench 'ListFiltered100k' -benchtime 1000x -timeout 60m \
  ./internal/inventory/ | tee -a "$out/inventory.txt"

# metric VALUE for a benchmark line: metric "BenchmarkX/sub" "unit"
metric() { grep -E "^$1(-[0-9]+)? " "$2" | head -1 | awk -v u="$3" '{for(i=1;i<=NF;i++) if($i==u) print $(i-1)}'; }
sha=$(grep -E '^BenchmarkSHA256/raw' "$out/ledger.txt" | head -1 | awk '{for(i=1;i<=NF;i++) if($i=="hashes/s") print $(i-1)}')
echo
echo "== summary (appends as a fraction of raw SHA-256 of a ledger-entry-sized input: $sha hashes/s)"
for eng in sqlite postgres; do
  for b in AppendSingle AppendBatch100; do
    v=$(metric "Benchmark$b/$eng" "$out/ledger.txt" entries/s || true)
    [ -n "$v" ] && awk -v b="$b" -v e="$eng" -v v="$v" -v s="$sha" 'BEGIN{printf "%-16s %-9s %10.0f entries/s  = %.4f of SHA-256\n", b, e, v, v/s}'
  done
  v=$(metric "BenchmarkInclusionProof1M/$eng" "$out/ledger.txt" us/proof || true)
  [ -n "$v" ] && printf '%-16s %-9s %10s us/proof\n' InclusionProof "$eng" "$v"
  v=$(metric "BenchmarkImport100k/$eng" "$out/inventory.txt" devices/s || true)
  [ -n "$v" ] && printf '%-16s %-9s %10s devices/s\n' Import100k "$eng" "$v"
  p50=$(grep -E "^BenchmarkListFiltered100k/$eng" "$out/inventory.txt" | tail -1 | awk '{for(i=1;i<=NF;i++) if($i=="p50-ms") print $(i-1)}')
  p99=$(grep -E "^BenchmarkListFiltered100k/$eng" "$out/inventory.txt" | tail -1 | awk '{for(i=1;i<=NF;i++) if($i=="p99-ms") print $(i-1)}')
  [ -n "$p50" ] && printf '%-16s %-9s p50 %s ms, p99 %s ms\n' ListFiltered100k "$eng" "$p50" "$p99"
done
echo "raw output in $out"
