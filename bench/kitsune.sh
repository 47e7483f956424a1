#!/usr/bin/env bash
# Runs fleetward detect and Kitsune-py on the same capture in the same run and prints their detection
# figures and throughput side by side (docs/BENCHMARKS.md, "Network detection").
#
# Usage: KITSUNE_PY=/path/to/Kitsune-py bash bench/kitsune.sh [--runs N] [--repeats R] [--pcap F --labels F]
#   KITSUNE_PY  a checkout of github.com/ymirsky/Kitsune-py; its code is never part of fleetward.
#               It needs numpy and scipy for /usr/bin/python3 (Debian: python3-numpy python3-scipy
#               python3-scapy, and tshark, which Kitsune-py uses to parse the capture when found).
#   --runs N    run each side N times (default 1) and report the median packets/s.
#   --repeats R run fleetward R times in each of those rounds (default 3): its run lasts a fraction of a
#               second against Kitsune-py's minute, so a single one is at the mercy of a noisy moment on a
#               shared host; the median is taken over all N×R.
#   PYTHON      the interpreter for Kitsune-py (default /usr/bin/python3).
# fleetward runs pinned to one core (taskset -c 0) and unpinned (all cores); Kitsune-py runs pinned to
# one core. Progress goes to stderr, the table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

data=../shared/datasets/kitsune-mirai
[ -d "$data" ] || data=/work/shared/datasets/kitsune-mirai
pcap=$data/mirai-splice.pcap
labels=$data/mirai-splice.labels
runs=1
repeats=3
fm=5000
ad=20000
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --pcap) pcap=$2; shift 2 ;;
    --labels) labels=$2; shift 2 ;;
    *) echo "kitsune.sh: unknown argument $1 (usage: [--runs N] [--pcap F --labels F])" >&2; exit 2 ;;
  esac
done
python=${PYTHON:-/usr/bin/python3}

if [ -z "${KITSUNE_PY:-}" ]; then
  echo "kitsune.sh: set KITSUNE_PY to a Kitsune-py checkout (github.com/ymirsky/Kitsune-py); it is not part of fleetward" >&2
  exit 2
fi
if [ ! -f "$KITSUNE_PY/Kitsune.py" ] || [ ! -f "$KITSUNE_PY/netStat.py" ] || [ ! -f "$KITSUNE_PY/KitNET/KitNET.py" ]; then
  echo "kitsune.sh: KITSUNE_PY=$KITSUNE_PY is not a Kitsune-py checkout (Kitsune.py, netStat.py, KitNET/KitNET.py missing)" >&2
  exit 2
fi
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "kitsune.sh: --runs wants a positive number, got $runs" >&2; exit 2; }
[[ $repeats =~ ^[1-9][0-9]*$ ]] || { echo "kitsune.sh: --repeats wants a positive number, got $repeats" >&2; exit 2; }
for f in "$pcap" "$labels"; do [ -f "$f" ] || { echo "kitsune.sh: $f not found" >&2; exit 2; }; done
for c in jq taskset "$python"; do command -v "$c" >/dev/null || { echo "kitsune.sh: $c not found" >&2; exit 2; }; done
"$python" -c 'import numpy, scipy' 2>/dev/null ||
  { echo "kitsune.sh: $python cannot import numpy and scipy (apt-get install python3-numpy python3-scipy)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM # so that EXIT runs and removes $tmp when interrupted
echo "kitsune.sh: building fleetward" >&2
go build -o "$tmp/fleetward" ./cmd/fleetward

fleetward() { # fleetward OUT [taskset args]: one detect run, JSON in OUT
  local out=$1; shift
  "$@" "$tmp/fleetward" detect --pcap "$pcap" --labels "$labels" --fm "$fm" --ad "$ad" --json >"$out"
}
for i in $(seq "$runs"); do
  echo "kitsune.sh: fleetward, one core, run $i/$runs" >&2
  for r in $(seq "$repeats"); do
    fleetward "$tmp/fw1-$i-$r.json" taskset -c 0
  done
  echo "kitsune.sh: fleetward, all $(nproc) cores, run $i/$runs" >&2
  for r in $(seq "$repeats"); do
    fleetward "$tmp/fwn-$i-$r.json"
  done
  echo "kitsune.sh: Kitsune-py, one core, run $i/$runs (a few minutes)" >&2
  KITSUNE_PY=$KITSUNE_PY taskset -c 0 "$python" bench/kitsune_run.py --pcap "$pcap" --labels "$labels" \
    --fm "$fm" --ad "$ad" --max-ae 10 >"$tmp/kit-$i.json"
done

median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
fw1=$(jq -s '.[].result.packets_per_second' "$tmp"/fw1-*.json | median)
fwn=$(jq -s '.[].result.packets_per_second' "$tmp"/fwn-*.json | median)
kit=$(jq -s '.[].overall_pps' "$tmp"/kit-*.json | median)
kitinit=$(jq -s '.[].with_init_pps' "$tmp"/kit-*.json | median)
each() { jq -rs "[.[].$1 | round] | join(\", \")" "${@:2}"; } # each FIELD FILES: every run's packets/s

commit=$(git -C "$KITSUNE_PY" rev-parse HEAD 2>/dev/null || echo "unknown (not a git checkout)")
echo "== $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(go version | cut -d' ' -f3), fleetward $(git rev-parse --short HEAD)"
# The machine matters more than anything for the absolute figures (the same code ran 2-3x apart on the
# machines at hand): its processor, as the kernel names it, and whether it has AVX-512.
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
model=$(awk -F': ' '/^model[[:space:]]*:/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
avx512=$(grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo "AVX-512" || echo "no AVX-512")
loads=$(jq -r '.result.sigmoid_loads // "?"' "$tmp/fw1-1-1.json")
echo "== processor: ${cpu:-unknown} (model ${model:-?}), $avx512; fleetward's sigmoid table read: $loads (the faster here)"
echo "== Kitsune-py $commit: $("$python" --version 2>&1), numpy $("$python" -c 'import numpy; print(numpy.__version__)')," \
  "scipy $("$python" -c 'import scipy; print(scipy.__version__)'), $(tshark --version 2>/dev/null | head -1 || echo 'no tshark')"
jq -r '"== Kitsune-py parser: \(.parser), AfterImage: \(.setup.afterimage)"' "$tmp/kit-1.json"
jq -r '"== \(.file): \(.packets) packets, FM grace \(.fm_grace), AD grace \(.ad_grace), \(.evaluation.benign) benign and \(.evaluation.malicious) malicious scored"' "$tmp/kit-1.json"
echo "== packets/s: median of $runs run(s) of Kitsune-py and $((runs * repeats)) of fleetward; Kitsune-py's is its packet loop (the recorded run's overall_pps), tshark parsing excluded"
[ "$((runs * repeats))" -gt 1 ] && echo "== every run: fleetward one core $(each result.packets_per_second "$tmp"/fw1-*.json)," \
  "all cores $(each result.packets_per_second "$tmp"/fwn-*.json), Kitsune-py $(each overall_pps "$tmp"/kit-*.json)"
printf '%-30s %8s %8s %9s %10s %12s\n' "" AUC EER "TPR@1%" "TPR@0.1%" "packets/s"
row() { # row NAME FILE JQ-PATH-TO-EVALUATION PPS
  jq -r --arg n "$1" --arg p "$4" "$3"' | "\($n)\t\(.auc)\t\(.eer)\t\(.["tpr_at_fpr_0.01"])\t\(.["tpr_at_fpr_0.001"])\t\($p)"' "$2" |
    awk -F'\t' '{printf "%-30s %8.5f %8.5f %9.4f %10.4f %12.0f\n", $1, $2, $3, $4, $5, $6}'
}
row "fleetward, one core" "$tmp/fw1-1-1.json" .evaluation "$fw1"
row "fleetward, all cores" "$tmp/fwn-1-1.json" .evaluation "$fwn"
row "fleetward, smoothed (alerts)" "$tmp/fwn-1-1.json" .evaluation_smoothed "$fwn"
row "Kitsune-py, one core" "$tmp/kit-1.json" .evaluation "$kit"
jq -r '"Kitsune-py timings (run 1): init (tshark + setup) \(.init_s*100|round/100) s, loop \(.loop_wall_s*10|round/10) s = features \(.fe_s*10|round/10) s + KitNET \(.kitnet_s*10|round/10) s; phases fm \(.phase_pps.fm|round), ad \(.phase_pps.ad|round), exec \(.phase_pps.exec|round) packets/s"' "$tmp/kit-1.json"
awk -v a="$fw1" -v b="$fwn" -v k="$kit" -v ki="$kitinit" 'BEGIN {
  printf "throughput fleetward/Kitsune-py: one core %.0fx, all cores %.0fx (%.0fx and %.0fx against Kitsune-py with its tshark parse counted, %.0f packets/s)\n", a/k, b/k, a/ki, b/ki, ki }'
