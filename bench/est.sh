#!/usr/bin/env bash
# EST enrolment throughput: a real `fleetward serve` (SQLite, embedded bus)
# and `fleetward sim --enrol-only`, which for each of N devices registers it
# in the inventory, asks for its one-time token, makes its P-256 key and
# CSR, and enrols over EST (RFC 7030) on HTTPS. Both run on this machine and
# share its cores. The reference in the same run is `openssl speed` ECDSA
# P-256 signing: each enrolment costs the server at least one CA signature
# (plus the CSR check, the token check, the ledger entries and the stored
# certificate). Usage: bash bench/est.sh [DEVICES] (default 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
n=${1:-10000}
work=$(mktemp -d)
go build -o "$work/fleetward" ./cmd/fleetward
port=$((20000 + RANDOM % 20000))
"$work/fleetward" serve --data "$work/data" --http 127.0.0.1:$port --mqtt "" --est-rate 1000000 > "$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf --cacert "$work/data/tls/ca.crt" https://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.2; done
token=$("$work/fleetward" token create --data "$work/data" --name bench --role operator)
echo "== machine: $(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== EST: $n devices (register + token + keygen + simpleenroll), 16 in flight"
"$work/fleetward" sim --server https://127.0.0.1:$port --cacert "$work/data/tls/ca.crt" --token "$token" \
  --devices "$n" --enrol-only --json 2>/dev/null | tee "$work/sim.json"
rate=$(python3 -c "import json;print(round(json.load(open('$work/sim.json'))['enrol_per_second'],1))")
echo "== reference: openssl speed ecdsap256 (signatures/s, one core)"
sign=$(openssl speed -seconds 3 ecdsap256 2>/dev/null | awk '/256 bits ecdsa \(nistp256\)/ {print $(NF-1)}')
echo "openssl ECDSA P-256 signs/s: $sign"
awk -v r="$rate" -v s="$sign" 'BEGIN{printf "enrolments/s %.1f = %.4f of one core'"'"'s P-256 signing rate\n", r, r/s}'
