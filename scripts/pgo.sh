#!/usr/bin/env bash
# Rewrites cmd/fleetward/default.pgo, the CPU profile with which `go build`
# and `go run` optimise the fleetward binary (Go's profile-guided
# optimisation: hot calls inlined past the usual budget). The profile is of
# the packet detector, the one CPU-bound path, on the Mirai splice: the
# whole run on one goroutine and pipelined (BenchmarkScoreCapture). PGO
# changes no result: the benchmarks and the detector's tests compare scores
# bit for bit. Rerun it after large changes to internal/detect; a stale
# profile still builds, it only optimises less.
#
# Usage: bash scripts/pgo.sh   (about a minute; needs ../shared/datasets)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/detect.test" ./internal/detect/
(cd internal/detect && "$tmp/detect.test" -test.run '^$' -test.bench 'ScoreCapture' -test.benchtime 40x \
  -test.cpuprofile "$tmp/cpu.pprof" | grep -E 'packets/s|^ok|FAIL')
cp "$tmp/cpu.pprof" cmd/fleetward/default.pgo
echo "pgo.sh: wrote cmd/fleetward/default.pgo ($(wc -c < cmd/fleetward/default.pgo) bytes)"
