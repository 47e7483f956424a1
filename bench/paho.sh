#!/usr/bin/env bash
# Runs the Eclipse Paho MQTT interoperability client suites (MQTT 5 and
# 3.1.1) against fleetward's broker in its test-only open mode and, in the
# same run, against a private Debian mosquitto on a free 127.0.0.1 port, and
# prints the pass counts side by side (docs/MQTT-CONFORMANCE.md).
# Usage: bash bench/paho.sh /path/to/paho.mqtt.testing
#   FLEETWARD_PAHO_RUNNER  runner script (default ../shared/lab/paho_run.py)
#   FLEETWARD_PAHO_TIMEOUT bound per test (default 45s)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: bash bench/paho.sh PAHO_CHECKOUT" >&2; exit 2; }
paho=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
out=$(mktemp)
FLEETWARD_PAHO_DIR="$paho" go test -count=1 -run '^TestPahoInteroperability$' -v -timeout 30m \
  ./internal/broker/ >"$out" 2>&1 || { tail -30 "$out"; exit 1; }
grep -E 'paho_test.go:[0-9]+: paho [a-z_0-9]+ (fleetward|mosquitto): ' "$out" | sed 's/^ *paho_test.go:[0-9]*: //'
echo "full output (each failing test's traceback) in $out"
