#!/usr/bin/env bash
# Connection scale: N concurrent mutual-TLS MQTT sessions from the
# simulator against `fleetward serve`, once with the default hybrid
# post-quantum key exchange (X25519MLKEM768) and once with X25519 only.
# Reports the server's resident memory per session (VmRSS after all are
# connected minus VmRSS after enrolment, divided by N) and the connect
# rate (TLS 1.3 handshake with client certificate + MQTT CONNECT + the
# server's identity checks), both phases timed by the simulator.
# Usage: bash bench/connscale.sh [N] (default 19500). Each side holds N
# sockets, so N must stay under the open-file limit of one process; this
# workplace's machines cap it at 20,000 with no way to raise it (no
# CAP_SYS_RESOURCE), hence the default just under it.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
n=${1:-19500}
ulimit -n "$(ulimit -Hn)"
if [ "$n" -gt $(( $(ulimit -n) - 200 )) ]; then
  echo "N=$n is too close to the open-file limit $(ulimit -n); each process holds N sockets" >&2; exit 2
fi
work=$(mktemp -d)
go build -o "$work/fleetward" ./cmd/fleetward
echo "== machine: $(nproc) cores, $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%dT%H:%MZ), $n sessions per run"
rss() { awk '/VmRSS/ {print $2}' /proc/$1/status; }
run() { # curve label
  local curve=$1 data="$work/data-$1" port=$((20000 + RANDOM % 20000)) mport=$((40000 + RANDOM % 20000))
  "$work/fleetward" serve --data "$data" --http 127.0.0.1:$port --mqtt 127.0.0.1:$mport --est-rate 1000000 \
    --mqtt-connect-rate 100000000 --telemetry-interval 1h > "$work/serve-$curve.log" 2>&1 &
  local spid=$!
  for _ in $(seq 100); do curl -sf --cacert "$data/tls/ca.crt" https://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.2; done
  local token
  token=$("$work/fleetward" token create --data "$data" --name bench --role operator 2>/dev/null)
  local flag=()
  [ "$curve" = x25519 ] && flag=(--curve x25519)
  "$work/fleetward" sim --server https://127.0.0.1:$port --mqtt 127.0.0.1:$mport --cacert "$data/tls/ca.crt" --token "$token" \
    --devices "$n" --phased --phase-gap 5s --speed 0.001 --concurrency 32 "${flag[@]}" --json > "$work/sim-$curve.json" 2> "$work/sim-$curve.err" &
  local simpid=$!
  until grep -q " $n/$n enrolled" "$work/sim-$curve.err" 2>/dev/null; do
    sleep 1
    kill -0 $simpid 2>/dev/null || { echo "the simulator stopped: $(tail -c 300 "$work/sim-$curve.err")" >&2; exit 1; }
  done
  sleep 3
  local before after
  before=$(rss $spid)
  local waited=0
  until grep -q " $n connected" <(tail -c 300 "$work/sim-$curve.err" | tr '\r' '\n' | tail -2) 2>/dev/null; do
    sleep 1; waited=$((waited + 1))
    if [ $waited -gt 600 ]; then echo "not all $n connected after 10 min: $(tail -c 200 "$work/sim-$curve.err" | tr '\r' '\n' | tail -1)" >&2; break; fi
  done
  sleep 3
  after=$(rss $spid)
  kill -INT $simpid; wait $simpid || true
  kill $spid; wait $spid || true
  python3 - "$work/sim-$curve.json" "$before" "$after" "$n" "$curve" <<'PY'
import json, sys
st = json.load(open(sys.argv[1])); before, after, n, curve = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
print(f"{curve:15s} connect {st['connect_seconds']:.1f} s = {st['connect_per_second']:.0f} sessions/s; server RSS {before/1024:.0f} -> {after/1024:.0f} MiB = {(after-before)/n:.1f} KiB per session")
PY
}
run default
run x25519
echo "raw output in $work"
